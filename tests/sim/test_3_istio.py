"""Istio on the simulated cluster: `make mesh MESH=istio` with the real istioctl install and the real istiod
(scripts/sim/controlplane.py) behind Istio's webhooks, then every Istio lab, each canary step, labs stacked in
every order, `istioctl analyze` against the live API after each, and `make lab-reset` back to the overlay."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from scripts.k8svalidate.findings import Finding, load_allowlist, split
from services import topology
from tests.sim.guides import GuideCommand, run_guide
from tests.sim.helpers import (
    BIN,
    CONTEXT,
    ROOT,
    SIM_DIR,
    Doc,
    Result,
    apply_manifest,
    comparable,
    contains,
    ensure_shop,
    exists,
    get_json,
    items,
    kubectl,
    make,
    plain_overlay_differences,
    run,
    snapshot,
)

LABS = sorted(p.parent.name for p in (ROOT / "mesh" / "istio" / "labs").glob("*/kustomization.yaml"))
CANARY_STEPS = sorted((ROOT / "mesh" / "istio" / "labs" / "canary" / "steps").glob("*.yaml"))
# What a lab may add or change, and where (the gateway lab's TLS Secret is in istio-system; the egress lab
# has a namespace of its own).
LAB_NAMESPACES = ("ecommerce", "istio-system", "payments-provider")
LAB_KINDS = (
    "deployments,statefulsets,services,configmaps,serviceaccounts,secrets",
    "virtualservices.networking.istio.io,destinationrules.networking.istio.io,gateways.networking.istio.io",
    "serviceentries.networking.istio.io,sidecars.networking.istio.io,envoyfilters.networking.istio.io",
    "peerauthentications.security.istio.io,authorizationpolicies.security.istio.io",
    "requestauthentications.security.istio.io",
)


def lab_state() -> dict[str, Doc]:
    """The objects labs touch, comparable (status and server-written metadata dropped), plus namespaces."""
    objects = snapshot(["ecommerce", "payments-provider"], LAB_KINDS)
    for obj in items("-n", "istio-system", "secrets,configmaps", "-l", "lab"):
        objects[f"{obj['kind']}/istio-system/{obj['metadata']['name']}"] = comparable(obj)
    for ns in items("namespaces"):
        objects[f"Namespace/{ns['metadata']['name']}"] = {"labels": ns["metadata"].get("labels", {})}
    # Istio writes these into every namespace; their content is its own (CA root), not a lab's.
    return {k: v for k, v in objects.items() if not k.startswith("ConfigMap/ecommerce/istio-ca-root-cert")}


def differences(before: dict[str, Doc], after: dict[str, Doc]) -> list[str]:
    """What was added, removed or changed (each changed field by its path, before -> after)."""
    out = [f"left behind: {k}" for k in sorted(after.keys() - before.keys())]
    out += [f"missing: {k}" for k in sorted(before.keys() - after.keys())]
    for k in sorted(before.keys() & after.keys()):
        if before[k] != after[k]:
            old, new = _flat(before[k]), _flat(after[k])
            changed = [p for p in sorted(old.keys() | new.keys()) if old.get(p) != new.get(p)]
            out.append(
                f"changed: {k}: "
                + "; ".join(f"{p}: {old.get(p)!r:.120} -> {new.get(p)!r:.120}" for p in changed)
            )
    return out


def _flat(value: object, path: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        return {p: v for k, item in value.items() for p, v in _flat(item, f"{path}.{k}").items()} or {
            path: {}
        }
    if isinstance(value, list):
        return {p: v for i, item in enumerate(value) for p, v in _flat(item, f"{path}[{i}]").items()} or {
            path: []
        }
    return {path: value}


FINDING = re.compile(r"^(Error|Warning|Info) \[(IST\d+)\] \(([^)]*)\) (.*)$")


def istioctl_analyze() -> str:
    """`istioctl analyze` of the shop's namespaces against the live API server (Info and up): its findings
    that the ONE reviewed allowlist of make validate (scripts/k8svalidate/allowlist.yaml) does not accept,
    or '' when there are none. A failure to run, or output it cannot read, is a finding too."""
    allowlist = load_allowlist()
    findings = []
    for ns in ("ecommerce", "payments-provider"):
        if ns != "ecommerce" and not exists("namespace", ns):
            continue
        result = run(
            [str(BIN / "istioctl"), "--context", CONTEXT, "analyze", "-n", ns, "--failure-threshold", "Info"],
            timeout=300,
        )
        if "No validation issues found" in result.output and result.returncode == 0:
            continue
        lines = [m for line in result.output.splitlines() if (m := FINDING.match(line.strip()))]
        if not lines:
            findings.append(f"istioctl analyze -n {ns} exited {result.returncode}:\n{result.output}")
        found = [Finding("istioctl analyze", m[2], m[1], m[3], m[4], f"live/{ns}") for m in lines]
        bad, _, _ = split(found, allowlist)
        findings += [str(f) for f in bad]
    return "\n".join(findings)


@pytest.fixture(scope="module")
def overlay_state() -> dict[str, Doc]:
    """The shop on Istio without labs (reached with the student's commands): what lab-reset returns to."""
    ensure_shop("istio")
    return lab_state()


def test_make_mesh_istio_installs_istio_with_its_webhooks_served_by_the_real_istiod() -> None:
    ensure_shop("none")
    result = make("mesh", "MESH=istio")
    assert "istioctl --context kwok-shop install" in result.output
    assert "CLUSTER=sim: skipped istioctl proxy-status" in result.output
    assert "every pod in ecommerce has an istio-proxy sidecar" in result.output, result.tail()
    for name in ("istiod", "istio-ingressgateway", "istio-egressgateway"):
        d = get_json("-n", "istio-system", "deployment", name)
        assert d["status"].get("availableReplicas") == d["spec"]["replicas"], f"{name} is not available"
    labels = get_json("namespace", "ecommerce")["metadata"]["labels"]
    assert labels.get("istio-injection") == "enabled"
    crds = {c["metadata"]["name"] for c in items("crds")}
    assert {"virtualservices.networking.istio.io", "authorizationpolicies.security.istio.io"} <= crds
    injector = get_json("mutatingwebhookconfiguration", "istio-sidecar-injector")
    assert all(w["clientConfig"].get("caBundle") for w in injector["webhooks"]), (
        "istiod did not patch its CA into the injection webhook"
    )
    assert all(w["clientConfig"]["service"]["name"] == "istiod" for w in injector["webhooks"]), (
        "the injection webhook's clientConfig was changed: the simulation must not patch it"
    )
    log = (SIM_DIR / "logs" / "controlplane.log").read_text()
    assert "-> 127.0.0.1:" in log and "Service istio-system/istiod:443" in log, (
        "the API server never reached istiod through the egress proxy"
    )


def _proxy(pod: Doc) -> tuple[Doc | None, str]:
    for c in pod["spec"].get("initContainers", []):
        if c["name"] == "istio-proxy":
            return c, "native sidecar" if c.get("restartPolicy") == "Always" else "init container"
    for c in pod["spec"]["containers"]:
        if c["name"] == "istio-proxy":
            return c, "container"
    return None, "none"


def test_the_injection_webhook_really_mutates_the_shop_pods(overlay_state: dict[str, Doc]) -> None:
    pods = [p for p in items("-n", "ecommerce", "pods") if not p["metadata"].get("deletionTimestamp")]
    assert pods
    for pod in pods:
        name = pod["metadata"]["name"]
        proxy, how = _proxy(pod)
        assert proxy is not None, f"{name} has no istio-proxy: the injection webhook did not run"
        # Istio >= 1.27 injects the proxy as a native sidecar (an init container that keeps running).
        assert how == "native sidecar", f"{name}: istio-proxy is a {how}"
        assert proxy["image"].split("/")[-1].startswith("proxyv2:"), proxy["image"]
        inits = [c["name"] for c in pod["spec"].get("initContainers", [])]
        assert inits.index("istio-init") < inits.index("istio-proxy"), (
            f"{name}: {inits} (istio-init sets iptables)"
        )
        annotations = pod["metadata"]["annotations"]
        assert "sidecar.istio.io/status" in annotations, f"{name}: no injection status annotation"
        app = next(c for c in pod["spec"]["containers"] if c["name"] == pod["metadata"]["labels"]["app"])
        for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = app.get(probe_kind)
            if probe and "httpGet" in probe:
                # Probe rewrite: the kubelet asks the sidecar's agent (15020), which calls the app.
                assert probe["httpGet"]["port"] == 15020, f"{name}: {probe_kind} not rewritten: {probe}"
                assert probe["httpGet"]["path"].startswith(f"/app-health/{app['name']}/"), probe
        env = {e["name"]: e.get("value", "") for e in proxy.get("env", [])}
        if any("httpGet" in (app.get(k) or {}) for k in ("readinessProbe", "livenessProbe")):
            assert "ISTIO_KUBE_APP_PROBERS" in env, f"{name}: the original probes are not handed to the agent"
    services = {p["metadata"]["labels"].get("app") for p in pods}
    assert set(topology.SERVICES) <= services


def test_istio_validation_webhook_rejects_what_only_istio_knows(overlay_state: dict[str, Doc]) -> None:
    """Istio's validating webhook (served by the real istiod) refuses a VirtualService whose regex does not
    compile: the CRD schema and its CEL rules accept it."""
    bad = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "planted-bad-regex", "namespace": "ecommerce"},
        "spec": {
            "hosts": ["product"],
            "http": [
                {"match": [{"uri": {"regex": "(unclosed"}}], "route": [{"destination": {"host": "product"}}]}
            ],
        },
    }
    result = apply_manifest([bad])
    assert result.returncode != 0, "the invalid regex was admitted"
    assert 'admission webhook "validation.istio.io" denied the request' in result.stderr, result.stderr


def check_lab_applied(lab: str) -> None:
    """Every object of the overlay with the lab (as make lab rendered it) is in the cluster: one `kubectl
    get -k`, which fails naming any object that is missing."""
    rendered = ROOT / ".cache" / "lab" / f"istio-{lab}"
    result = run(
        [str(BIN / "kubectl"), "--context", CONTEXT, "get", "-k", str(rendered), "-o", "name"], timeout=300
    )
    assert result.returncode == 0, f"objects of lab {lab} are not in the cluster:\n{result.tail()}"


def check_reset(overlay_state: dict[str, Doc]) -> None:
    diffs = differences(overlay_state, lab_state())
    assert diffs == [], "after make lab-reset:\n" + "\n".join(diffs)
    diffs = plain_overlay_differences("istio")
    assert diffs == [], "after make lab-reset, against the overlay:\n" + "\n".join(diffs)


GUIDES = sorted((ROOT / "docs" / "istio").glob("*.md"))
LAB_GUIDES = [g for g in GUIDES if g.stem in LABS]


def test_every_istio_lab_has_a_guide() -> None:
    assert sorted(g.stem for g in LAB_GUIDES) == LABS


@pytest.mark.parametrize("guide", LAB_GUIDES, ids=lambda p: p.stem)
def test_each_lab_guide_runs_analyzes_clean_and_resets(guide: Path, overlay_state: dict[str, Doc]) -> None:
    """The guide's commands in its order (make lab, kubectl get, the canary's next step, make lab-reset).
    After each command that changes Istio config, `istioctl analyze` of the live cluster finds nothing; after
    make lab-reset the cluster's objects are the plain overlay's again."""
    lab = guide.stem

    def after(c: GuideCommand, _: Result) -> None:
        if c.command.name == "make" and c.target() == "lab" and c.settings().get("DRY_RUN") != "1":
            check_lab_applied(lab)
            assert istioctl_analyze() == "", f"istioctl analyze after `{c.text}`:\n{istioctl_analyze()}"
        elif c.command.name == "kubectl" and c.verb() == "apply":
            step = yaml.safe_load((ROOT / c.argv[c.argv.index("-f") + 1]).read_text())
            live = get_json("-n", step["metadata"]["namespace"], step["kind"], step["metadata"]["name"])
            assert contains(live["spec"], step["spec"]), f"{c.text}: the step's spec is not the live one"
            assert istioctl_analyze() == "", f"istioctl analyze after `{c.text}`:\n{istioctl_analyze()}"
        elif c.command.name == "make" and c.target() == "lab-reset":
            check_reset(overlay_state)

    ran = run_guide(guide, after)
    assert f"make lab LAB={lab} MESH=istio" in ran and "make lab-reset MESH=istio" in ran, ran
    if lab == "canary":
        assert any(text.startswith("kubectl apply -f") for text in ran), (
            "the canary guide applies no next step"
        )


def test_every_canary_step_is_in_the_guide() -> None:
    text = (ROOT / "docs" / "istio" / "canary.md").read_text()
    assert [s for s in CANARY_STEPS if str(s.relative_to(ROOT)) not in text] == []


def stack_orders(labs: list[str]) -> list[list[str]]:
    """All labs in order, and in reverse. Every lab is applied once while each other lab is already on (in
    one of the two orders), so any two labs that conflict on apply fail here, in either order."""
    return [list(labs), list(reversed(labs))]


@pytest.mark.parametrize("order", stack_orders(LABS), ids=lambda o: "-".join(o))
def test_labs_stack_in_any_order(order: list[str], overlay_state: dict[str, Doc]) -> None:
    """Every lab stays applied when the next one comes (labs stack); all labs stacked in one order equal
    them stacked in the other; istioctl analyze finds nothing; make lab-reset returns to the overlay."""
    for i, lab in enumerate(order):
        make("lab", f"LAB={lab}", "MESH=istio")
        applied = {o["metadata"]["labels"]["lab"] for o in _labelled()}
        assert set(order[: i + 1]) <= applied, f"after {order[: i + 1]} only labs {sorted(applied)} are on"
    stacked = lab_state()
    if _all_labs_state:
        assert differences(_all_labs_state[0], stacked) == [], "the same labs in another order differ"
    else:
        _all_labs_state.append(stacked)
    assert istioctl_analyze() == "", f"istioctl analyze with all labs ({order}):\n{istioctl_analyze()}"
    make("lab-reset", "MESH=istio")
    check_reset(overlay_state)


_all_labs_state: list[dict[str, Doc]] = []


def _labelled() -> list[Doc]:
    found = []
    for ns in LAB_NAMESPACES:
        out = kubectl("-n", ns, "get", ",".join(LAB_KINDS), "-l", "lab", "-o", "json", check=False)
        if out.lstrip().startswith("{"):
            found += yaml.safe_load(out)["items"]
    return found
