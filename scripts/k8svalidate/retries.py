"""Retries that may re-send a request the service already processed only where repeating it is harmless.

A retry after a 5xx answer, a reset or a per-try timeout re-sends a request that may have reached the service
and done its work. For GET, HEAD, OPTIONS, PUT and DELETE that is fine: HTTP defines them as idempotent (RFC
9110, section 9.2.2). For POST and PATCH it is not: the shop's `POST /users/me/addresses` carries no
idempotency key, so a retried one can store the address twice. (The lesson's Istio retry block did that to
every method of the user service; so did this repo's first Linkerd resilience lab.)

The checker knows which non-idempotent calls each service receives from the services' own client code
(`contract.service_calls`: method, path, caller), and finds every retry policy of both meshes that covers
them with a re-sending condition:

- Istio: a VirtualService HTTP route whose `retries.retryOn` has a condition that fires after the request
  reached the service, for the methods the route can see: a route whose every match is a method match sees
  only those; methods an earlier route takes by method alone never reach the later routes. Which conditions
  those are depends on the call (Envoy's router filter): `connect-failure`, `refused-stream` and
  `reset-before-request` never do; the gRPC conditions (`cancelled`, `unavailable`, ...) read the
  `grpc-status` of an answer, so they re-send gRPC calls only; `retriable-status-codes` re-sends the status
  codes named in `retryOn`, none if it names none. Without `retryOn` Istio's default applies
  (`connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with no codes,
  pilot/pkg/networking/core/route/retry/retry.go): it re-sends a gRPC call answered UNAVAILABLE or
  CANCELLED, and no HTTP call; `attempts: 0` turns retries off.
- Linkerd: `retry.linkerd.io/http` (or `grpc`) on a Service covers every method of that Service; on an
  HTTPRoute, the methods its rules match (a rule without a method match: every method).

gRPC calls are POSTs too: a gRPC retry policy must name only read methods (which these checks do not try to
prove), so any re-sending retry on the gRPC port of a service that receives non-idempotent gRPC calls is
reported as well.
"""

from __future__ import annotations

from collections.abc import Iterable

from scripts.k8svalidate.checks import on_docs
from scripts.k8svalidate.contract import service_calls
from scripts.k8svalidate.resources import Doc, find, name

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
EVERY_METHOD = frozenset({*IDEMPOTENT_METHODS, "POST", "PATCH", "CONNECT", "TRACE"})
# Istio (Envoy) retry conditions that only fire when the request never reached the service.
NOT_RESENDING = frozenset({"connect-failure", "refused-stream", "reset-before-request"})
# Envoy's gRPC retry conditions: they read an answer's grpc-status, so only a gRPC call is re-sent by them.
GRPC_ONLY = frozenset({"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"})
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"  # Istio's
LINKERD_RETRY_ANNOTATIONS = ("retry.linkerd.io/http", "retry.linkerd.io/grpc")
GATEWAY_GROUP = "gateway.networking.k8s.io"


def unsafe_calls() -> dict[str, list[tuple[str, str, str]]]:
    """callee service -> its non-idempotent calls as (method, path, caller ServiceAccount), from the code."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for caller, callee, method, path, _port in service_calls():
        if method not in IDEMPOTENT_METHODS:
            out.setdefault(callee, []).append((method, path, caller))
    return out


def grpc_paths() -> frozenset[str]:
    """The paths of the gRPC calls in the services' code (the calls on a port of their own)."""
    return frozenset(path for _caller, _callee, _method, path, port in service_calls() if port is not None)


def _short_host(host: str) -> str:
    """`user`, `user.ecommerce`, `user.ecommerce.svc.cluster.local` -> `user`."""
    return host.split(".", 1)[0]


def _report(kind: str, what: str, covered: Iterable[tuple[str, str, str]], fix: str) -> str:
    calls = ", ".join(f"{method} {path} (from {caller})" for method, path, caller in sorted(set(covered)))
    return f"{kind} {what}: a retry that re-sends covers {calls}, which is not idempotent: {fix}"


def _method_only(match: Doc) -> str | None:
    """The method of a match that has nothing but an exact method condition, else None."""
    method = match.get("method") or {}
    if set(match) == {"method"} and set(method) == {"exact"}:
        return str(method["exact"]).upper()
    return None


def _istio_resends(retries: Doc | None, grpc: bool) -> bool:
    """Does this retry policy re-send a call (gRPC or not) that may have reached the service? See the
    module docstring for the conditions; without retryOn Istio's default applies; attempts 0 is no retry."""
    if not retries or retries.get("attempts") == 0:
        return False
    conditions = {c.strip() for c in str(retries.get("retryOn") or DEFAULT_RETRY_ON).split(",")} - {""}
    codes = {c for c in conditions if c.isdigit()}  # Istio adds retriable-status-codes for them
    resending = conditions - NOT_RESENDING - codes
    if not codes:
        resending.discard("retriable-status-codes")
    if not grpc:
        resending -= GRPC_ONLY
    return bool(resending or codes)


def istio_retry_errors(docs: list[Doc]) -> list[str]:
    """VirtualService routes whose retries re-send non-idempotent calls (see the module docstring)."""
    unsafe = unsafe_calls()
    grpc = grpc_paths()
    errors = []
    for vs in find(docs, "VirtualService"):
        received = [
            call for host in vs["spec"].get("hosts", []) for call in unsafe.get(_short_host(host), [])
        ]
        taken: set[str] = set()  # methods earlier routes take by method alone
        for index, route in enumerate(vs["spec"].get("http", [])):
            matches = route.get("match") or [{}]
            methods = {m for m in map(_method_only, matches) if m}
            by_method_alone = len(methods) == len(matches)
            sees = (methods if by_method_alone else set(EVERY_METHOD)) - taken
            if by_method_alone:
                taken |= methods
            retries = route.get("retries")
            covered = [
                call for call in received if call[0] in sees and _istio_resends(retries, grpc=call[1] in grpc)
            ]
            if covered:
                label = route.get("name") or f"#{index}"
                fix = (
                    "give those methods a route of their own that retries only connect-failure,refused-stream"
                )
                errors.append(_report("VirtualService", f"{name(vs)} route {label}", covered, fix))
    return errors


def _route_methods(route: Doc) -> set[str]:
    methods: set[str] = set()
    for rule in route["spec"].get("rules", []):
        matches = rule.get("matches") or [{}]
        for match in matches:
            methods |= {str(match["method"]).upper()} if match.get("method") else set(EVERY_METHOD)
    return methods


def linkerd_retry_errors(docs: list[Doc]) -> list[str]:
    """Services and HTTPRoutes whose Linkerd retry annotations re-send non-idempotent calls."""
    unsafe = unsafe_calls()
    errors = []
    fix = "put the retry annotations on an HTTPRoute whose rules match only GET, PUT and DELETE"
    for service in find(docs, "Service"):
        annotations = (service.get("metadata") or {}).get("annotations") or {}
        if any(a in annotations for a in LINKERD_RETRY_ANNOTATIONS) and unsafe.get(name(service)):
            errors.append(_report("Service", name(service), unsafe[name(service)], fix))
    for route in find(docs, "HTTPRoute", GATEWAY_GROUP) + find(docs, "GRPCRoute", GATEWAY_GROUP):
        annotations = (route.get("metadata") or {}).get("annotations") or {}
        if not any(a in annotations for a in LINKERD_RETRY_ANNOTATIONS):
            continue
        methods = _route_methods(route) if route["kind"] == "HTTPRoute" else {"POST"}
        for parent in route["spec"].get("parentRefs", []):
            if parent.get("kind", "Gateway") != "Service":
                continue
            covered = [call for call in unsafe.get(parent["name"], []) if call[0] in methods]
            if covered:
                errors.append(
                    _report(route["kind"], f"{name(route)} (parent Service {parent['name']})", covered, fix)
                )
    return errors


CHECKERS = [on_docs(istio_retry_errors, "istio"), on_docs(linkerd_retry_errors, "linkerd")]
