"""Istio's own validation warnings: deprecated fields and settings Istio accepts but ignores.

The API server (CRD schema) accepts these, istiod only logs a warning (`kubectl apply` shows it once), and
the setting silently does nothing or something else than it says. The rules come from Istio 1.30.3:

- fields the API marks `[deprecated = true]` (istio.io/api at the version istio 1.30.3 pins:
  networking/v1alpha3/{destination_rule,virtual_service,gateway,sidecar}.proto), and `warmupDurationSecs`
  ("Deprecated: use `warmup` instead");
- the warnings of pkg/config/validation/validation.go and virtualservice.go: outlier detection
  `consecutiveErrors`, consistent hash `minimumRingSize`, `mirrorPercent`, unreachable VirtualService rules
  and duplicate matches, legacy `name.namespace` gateway names, an abort without an error type, a workload
  selector without labels (applies to the whole namespace), TLS settings a Gateway server ignores
  (certificates in PASSTHROUGH modes, `httpsRedirect` on a non-HTTP server, TLS 1.0/1.1 without cipher
  suites, duplicate cipher suites), Sidecar HTTP connection pools on non-HTTP ports, ServiceEntry TCP ports
  without addresses, more than one tracing or provider in a Telemetry, and EnvoyFilter itself.

Not covered (reported by Istio, not by this module): cipher suite names Envoy does not know, private keys
in inline JWKS, direct responses over 100 kB, Sidecar egress host duplicates, ServiceEntry partial
wildcards, and the prefix-overlap part of the unreachable-rule analysis.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from scripts.k8svalidate.resources import Doc, find, group, name

ISTIO_GROUPS = ("networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io")

# (kind, regex on the dotted path with [] for list items, message). Paths start at `spec`.
DEPRECATED_FIELDS: list[tuple[str, str, str]] = [
    (
        "DestinationRule",
        r"\.outlierDetection\.consecutiveErrors$",
        "deprecated and IGNORED: use consecutive5xxErrors (or consecutiveGatewayErrors)",
    ),
    ("DestinationRule", r"\.consistentHash\.minimumRingSize$", "deprecated: use consistentHash.ringHash"),
    ("DestinationRule", r"\.loadBalancer\.warmupDurationSecs$", "deprecated: use loadBalancer.warmup"),
    ("VirtualService", r"^spec\.http\[\]\.mirrorPercent$", "deprecated: use mirrorPercentage"),
    ("VirtualService", r"\.corsPolicy\.allowOrigin$", "deprecated: use allowOrigins"),
    ("VirtualService", r"\.fault\.delay\.percent$", "deprecated: use percentage.value"),
    ("Gateway", r"^spec\.servers\[\]\.port\.targetPort$", "deprecated, has no effect"),
    ("Sidecar", r"\.port\.targetPort$", "deprecated, has no effect"),
]
# enum values the API marks deprecated
DEPRECATED_VALUES: list[tuple[str, str, str, str]] = [
    ("DestinationRule", r"\.loadBalancer\.simple$", "LEAST_CONN", "deprecated: use LEAST_REQUEST"),
]
HTTP_PROTOCOLS = {"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB"}
TCP_PROTOCOLS = {"TCP", "HTTPS", "TLS", "MONGO", "REDIS", "MYSQL"}


def walk(node: Any, path: str = "spec") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every node under `node`; list items get `[]`."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for v in node:
            yield from walk(v, f"{path}[]")


def _istio_docs(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if group(d) in ISTIO_GROUPS]


def deprecated_field_errors(docs: list[Doc]) -> list[str]:
    """Fields and enum values the Istio API marks deprecated, in every Istio resource."""
    errs = []
    for doc in _istio_docs(docs):
        for path, value in walk(doc.get("spec") or {}):
            for kind, pattern, why in DEPRECATED_FIELDS:
                if doc["kind"] == kind and re.search(pattern, path):
                    errs.append(f"{kind} {name(doc)}: {path} is {why}")
            for kind, pattern, bad, why in DEPRECATED_VALUES:
                if doc["kind"] == kind and re.search(pattern, path) and value == bad:
                    errs.append(f"{kind} {name(doc)}: {path}: {bad} is {why}")
    return errs


def _match_key(match: Doc) -> str:
    return json.dumps({k: v for k, v in match.items() if k != "name"}, sort_keys=True)


def unreachable_rule_errors(vs: Doc) -> list[str]:
    """Rules after a rule without matches, and matches an earlier rule already has.

    Istio's analyzeUnreachableHTTPRules (and the TCP/TLS ones), without the prefix-overlap part.
    """
    errs = []
    for kind in ("http", "tcp", "tls"):
        seen: dict[str, str] = {}
        catch_all: str | None = None
        for i, rule in enumerate(vs["spec"].get(kind) or []):
            label = f"{kind} rule {rule.get('name', f'#{i}') if kind == 'http' else f'#{i}'}"
            matches = rule.get("match") or []
            if not matches:
                if catch_all is not None:
                    errs.append(f"{label} is never used: only the last rule can have no matches")
                catch_all = label
                continue
            if catch_all is not None:
                errs.append(f"{label} is never used: {catch_all} before it has no matches")
                continue
            duplicates = 0
            for j, match in enumerate(matches):
                key = _match_key(match)
                if key in seen:
                    errs.append(f"{label} match #{j} is never used: {seen[key]} has the same match")
                    duplicates += 1
                else:
                    seen[key] = label
            if duplicates == len(matches):
                errs.append(f"{label} is never used: all its matches are in earlier rules")
    return [f"VirtualService {name(vs)}: {e}" for e in errs]


def _virtual_service_warnings(vs: Doc) -> list[str]:
    errs = unreachable_rule_errors(vs)
    for gw in vs["spec"].get("gateways") or []:
        if "/" not in gw and "." in gw:
            parts = gw.split(".")
            errs.append(
                f"VirtualService {name(vs)}: gateway {gw!r} is the legacy name.namespace form: "
                f"use {parts[1]}/{parts[0]}"
            )
    for i, rule in enumerate(vs["spec"].get("http") or []):
        abort = (rule.get("fault") or {}).get("abort")
        if abort is not None and not {"httpStatus", "grpcStatus", "http2Error"} & set(abort):
            errs.append(
                f"VirtualService {name(vs)} http rule {rule.get('name', i)}: abort without an error type"
            )
    return errs


def _gateway_warnings(gw: Doc) -> list[str]:
    errs = []
    for server in gw["spec"].get("servers") or []:
        port = server.get("port") or {}
        tls = server.get("tls") or {}
        where = f"Gateway {name(gw)} server {port.get('name', port.get('number'))}"
        protocol = str(port.get("protocol", "")).upper()
        if tls.get("httpsRedirect") and protocol not in HTTP_PROTOCOLS:
            errs.append(f"{where}: tls.httpsRedirect is only used on HTTP servers")
        certs = ("caCrl", "serverCertificate", "privateKey", "caCertificates", "tlsCertificates")
        certs += ("credentialName", "credentialNames")
        if tls.get("mode") in ("PASSTHROUGH", "AUTO_PASSTHROUGH") and any(tls.get(c) for c in certs):
            errs.append(f"{where}: {tls['mode']} does not use certificates; they are ignored")
        if tls.get("minProtocolVersion") in ("TLSV1_0", "TLSV1_1") and not tls.get("cipherSuites"):
            errs.append(
                f"{where}: TLS below 1.2 needs cipherSuites (the defaults no longer include compatible ones)"
            )
        ciphers = tls.get("cipherSuites") or []
        if len(set(ciphers)) != len(ciphers):
            errs.append(f"{where}: duplicate cipherSuites are ignored")
    return errs


def _selector_warnings(doc: Doc) -> list[str]:
    """A selector without labels selects every workload (Istio's validateWorkloadSelector)."""
    spec = doc.get("spec") or {}
    if doc["kind"] != "Gateway" and isinstance(spec.get("selector"), dict):
        field, labels = "selector", spec["selector"].get("matchLabels")
    elif isinstance(spec.get("workloadSelector"), dict):
        key = "matchLabels" if doc["kind"] == "DestinationRule" else "labels"
        field, labels = "workloadSelector", spec["workloadSelector"].get(key)
    else:
        return []
    if labels:
        return []
    return [f"{doc['kind']} {name(doc)}: {field} without labels applies to every workload of the namespace"]


def _sidecar_warnings(sc: Doc) -> list[str]:
    errs = []
    for ingress in sc["spec"].get("ingress") or []:
        port = ingress.get("port") or {}
        pool = ingress.get("connectionPool") or {}
        if pool.get("http") and str(port.get("protocol", "")).upper() not in HTTP_PROTOCOLS:
            errs.append(
                f"Sidecar {name(sc)}: HTTP connection pool settings on port {port.get('number')} "
                f"({port.get('protocol')}) are ignored, only TCP settings apply"
            )
    return errs


def _service_entry_warnings(se: Doc) -> list[str]:
    spec = se["spec"]
    errs = []
    tcp_ports = [p for p in spec.get("ports") or [] if str(p.get("protocol", "TCP")).upper() == "TCP"]
    if tcp_ports and not spec.get("addresses"):
        errs.append(
            f"ServiceEntry {name(se)}: ports {[p.get('number') for p in tcp_ports]} serve TCP (or no "
            "protocol) without addresses: Istio cannot tell their traffic apart (unless IPs auto-allocate)"
        )
    if spec.get("resolution") == "NONE" and spec.get("workloadSelector"):
        errs.append(f"ServiceEntry {name(se)}: workloadSelector is ignored with resolution NONE")
    return errs


def _telemetry_warnings(tm: Doc) -> list[str]:
    tracing = tm["spec"].get("tracing") or []
    errs = []
    if len(tracing) > 1:
        errs.append(f"Telemetry {name(tm)}: more than one tracing entry is not supported")
    if any(len(t.get("providers") or []) > 1 for t in tracing):
        errs.append(f"Telemetry {name(tm)}: more than one tracing provider is not supported")
    return errs


def ignored_setting_errors(docs: list[Doc]) -> list[str]:
    """Settings Istio's validation accepts with a warning because they are ignored or have no effect."""
    errs = []
    for vs in find(docs, "VirtualService", "networking.istio.io"):
        errs += _virtual_service_warnings(vs)
    for gw in find(docs, "Gateway", "networking.istio.io"):
        errs += _gateway_warnings(gw)
    for sc in find(docs, "Sidecar", "networking.istio.io"):
        errs += _sidecar_warnings(sc)
    for se in find(docs, "ServiceEntry", "networking.istio.io"):
        errs += _service_entry_warnings(se)
    for tm in find(docs, "Telemetry", "telemetry.istio.io"):
        errs += _telemetry_warnings(tm)
    for ef in find(docs, "EnvoyFilter", "networking.istio.io"):
        errs.append(f"EnvoyFilter {name(ef)}: exposes Envoy internals that change between Istio releases")
    for doc in _istio_docs(docs):
        errs += _selector_warnings(doc)
    return errs
