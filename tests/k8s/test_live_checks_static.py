"""Static checks of the live suites in tests/cluster (they only run against a cluster, so read them here)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.cluster.helpers import idle_pod, pull_policy_for
from tests.cluster.istio.helpers import PYTHON_IMAGE, mesh_pod_manifest

LIVE = Path(__file__).resolve().parents[1] / "cluster"


def pod_containers(tree: ast.AST) -> list[dict[str, ast.expr]]:
    """Every dict literal with an "image" key: a container of a pod or Deployment the live checks create."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keyed = {
                k.value: v for k, v in zip(node.keys, node.values, strict=True) if isinstance(k, ast.Constant)
            }
            if "image" in keyed:
                out.append({str(k): v for k, v in keyed.items()})
    return out


def pull_policy_errors(source: str) -> list[str]:
    """Containers whose pull policy is not `pull_policy_for(<their image>)` (or Never for a shop image)."""
    errors = []
    for container in pod_containers(ast.parse(source)):
        image, policy = container["image"], container.get("imagePullPolicy")
        derived = (
            isinstance(policy, ast.Call)
            and ast.unparse(policy.func) == "pull_policy_for"
            and [ast.unparse(a) for a in policy.args] == [ast.unparse(image)]
        )
        literal_shop = isinstance(image, ast.Constant) and str(image.value).startswith("shop/")
        never = isinstance(policy, ast.Constant) and policy.value == "Never"
        if not derived and not (literal_shop and never):
            shown = ast.unparse(policy) if policy is not None else "unset"
            errors.append(f"container with image {ast.unparse(image)}: imagePullPolicy {shown}")
    return errors


def test_live_check_pods_never_pull_the_shop_images() -> None:
    sources = {path: path.read_text() for path in sorted(LIVE.rglob("*.py"))}
    for path, source in sources.items():
        assert pull_policy_errors(source) == [], path
    assert sum(len(pod_containers(ast.parse(s))) for s in sources.values()) >= 2
    assert pull_policy_for(PYTHON_IMAGE) == "Never" and PYTHON_IMAGE.startswith("shop/")
    assert pull_policy_for("curlimages/curl:8.11.1") == "IfNotPresent"
    (container,) = mesh_pod_manifest("order-sa", sidecar=True)["spec"]["containers"]
    assert container["imagePullPolicy"] == "Never"
    pod = idle_pod("x", "shop/order:dev", ["sleep"], "default", {})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_pull_policy_check_catches_a_planted_pod() -> None:
    planted = (
        'pod = {"containers": [{"name": "app", "image": PYTHON_IMAGE, "imagePullPolicy": "IfNotPresent"}]}'
    )
    assert pull_policy_errors(planted) == [
        "container with image PYTHON_IMAGE: imagePullPolicy 'IfNotPresent'"
    ]
    assert pull_policy_errors('c = {"image": "shop/order:dev"}') == [
        "container with image 'shop/order:dev': imagePullPolicy unset"
    ]
    assert pull_policy_errors('c = {"image": image, "imagePullPolicy": pull_policy_for(other)}') != []
    assert pull_policy_errors('c = {"image": image, "imagePullPolicy": pull_policy_for(image)}') == []


# --- negative live checks: the specific refusal, after the allowed path from the same place -------------

# Test names that promise a refusal.
NEGATIVE_NAME = re.compile(r"refus|denied|deny|block|not_allowed|forbid|only_for")
# What an assertion of the specific refusal contains (a status a proxy answers with, the reset, TCP closed).
REFUSAL = re.compile(r"\b(401|403|502|503)\b|RESET|is False|\(52, 56\)")
ALLOWED = re.compile(r"== 200\b|is True|code == 0")


def bare_negative_errors(source: str) -> list[str]:
    """`!= 200`-style negatives and unqualified `status == 0`: any failure (DNS, dead pod) passes them."""
    errors = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assert):
            continue
        for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            for op, right in zip(cmp.ops, cmp.comparators, strict=True):
                consts = [right] if isinstance(right, ast.Constant) else list(getattr(right, "elts", []))
                values = [c.value for c in consts if isinstance(c, ast.Constant)]
                two_xx = [v for v in values if isinstance(v, int) and 200 <= v < 300]
                if isinstance(op, ast.NotEq | ast.NotIn) and two_xx:
                    errors.append(f"line {node.lineno}: `{ast.unparse(cmp)}` passes on any failure")
                status_zero = isinstance(op, ast.Eq) and values == [0] and "status" in ast.unparse(cmp.left)
                if status_zero and "error" not in ast.unparse(node.test):
                    errors.append(f"line {node.lineno}: `{ast.unparse(cmp)}` without the error it must be")
    return errors


def allowed_first_errors(source: str) -> list[str]:
    """Tests named as negatives assert an allowed call before the refusal, and assert a specific refusal."""
    errors = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("test_"):
            continue
        if not NEGATIVE_NAME.search(fn.name):
            continue
        asserts = [n for n in ast.walk(fn) if isinstance(n, ast.Assert)]
        allowed = [a.lineno for a in asserts if ALLOWED.search(ast.unparse(a))]
        refused = [a.lineno for a in asserts if REFUSAL.search(ast.unparse(a))]
        if not refused:
            errors.append(f"{fn.name}: no specific refusal asserted (403, reset, ...)")
        elif not allowed or min(allowed) > min(refused):
            errors.append(f"{fn.name}: asserts no allowed call before the refusal")
    return errors


def test_every_live_negative_is_specific_and_proves_the_allowed_path_first() -> None:
    negatives = 0
    for path in sorted(LIVE.rglob("test_*.py")):
        source = path.read_text()
        assert bare_negative_errors(source) == [], path
        assert allowed_first_errors(source) == [], path
        negatives += sum(
            1
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.FunctionDef) and NEGATIVE_NAME.search(n.name)
        )
    assert negatives >= 6, "both meshes' security and egress negatives are checked"


def test_the_old_negatives_are_caught() -> None:
    # tests/cluster/linkerd/test_security.py as it was: a DNS error or a dead pod passed both
    old = """
def test_api_refuses_a_caller_without_mesh_identity(l5d_client) -> None:
    assert status(l5d_client("order-sa", meshed=False), "http://payment:3000/healthz") != 200


def test_mongodb_refuses_a_service_without_database(l5d_client) -> None:
    out = _mongo_http_probe(l5d_client("frontend-sa"))
    assert "MongoDB" not in out and "exit=0" not in out, out


def test_plaintext_is_refused(mesh_pod) -> None:
    assert mesh_pod("x", sidecar=False).http(URL)[0]["status"] == 0
"""
    assert bare_negative_errors(old) == [
        "line 3: `status(l5d_client('order-sa', meshed=False), 'http://payment:3000/healthz') != 200` "
        "passes on any failure",
        "line 12: `mesh_pod('x', sidecar=False).http(URL)[0]['status'] == 0` without the error it must be",
    ]
    assert allowed_first_errors(old) == [
        "test_api_refuses_a_caller_without_mesh_identity: no specific refusal asserted (403, reset, ...)",
        "test_mongodb_refuses_a_service_without_database: no specific refusal asserted (403, reset, ...)",
        "test_plaintext_is_refused: no specific refusal asserted (403, reset, ...)",
    ]
    refusal_only = (
        "def test_x_is_refused(c):\n    assert c.get(u).status == 403\n    assert c.get(v).status == 200\n"
    )
    assert allowed_first_errors(refusal_only) == [
        "test_x_is_refused: asserts no allowed call before the refusal"
    ]
