"""The README's quick start over a running shop: `make up`, then the mesh section's `make up MESH=istio` and
`make lab LAB=canary MESH=istio`, as a student who started without a mesh types them.

`make up MESH=istio` over the shop running without a mesh switches it as `make mesh` does: the frontend gives
NodePort 30080 back to Istio's ingress gateway (two Services cannot hold it: the API server refuses the
gateway's Service), Istio is installed, and every pod restarts with its sidecar. (Istio's uninstall from a
running shop is tests/sim/test_5_mesh_none.py; `make mesh MESH=istio` is tests/sim/test_3_istio.py.)
"""

from __future__ import annotations

from tests.sim.guides import GuideCommand, run_guide
from tests.sim.helpers import ROOT, Result, ensure_shop, get_json, plain_overlay_differences

README = ROOT / "README.md"


def test_readme_quick_start_make_up_with_istio_switches_the_running_shop_like_make_mesh() -> None:
    ensure_shop("none")
    assert get_json("-n", "ecommerce", "service", "frontend")["spec"]["type"] == "NodePort"
    switched = []

    def after(c: GuideCommand, result: Result) -> None:
        if c.command.name != "make" or c.target() != "up":
            return
        if c.settings().get("MESH", "none") == "none":
            assert "switching it" not in result.output, f"`{c.text}` over the plain shop:\n{result.tail()}"
            assert plain_overlay_differences("none") == []
            return
        assert "the shop runs on mesh none: switching it to istio" in result.output, result.tail()
        assert "every pod in ecommerce has an istio-proxy sidecar" in result.output, result.tail()
        gateway = get_json("-n", "istio-system", "service", "istio-ingressgateway")
        assert 30080 in [p.get("nodePort") for p in gateway["spec"]["ports"]]
        assert plain_overlay_differences("istio") == []
        switched.append(c.text)

    ran = run_guide(README, after)
    assert switched == ["make up MESH=istio"], f"the README's commands changed: {ran}"
    assert "make lab LAB=canary MESH=istio" in ran, ran
