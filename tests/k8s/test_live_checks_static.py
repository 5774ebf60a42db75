"""Static checks of the live suites in tests/cluster (they only run against a cluster, so read them here)."""

from __future__ import annotations

import ast
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
