"""The eight containers as the kubelet runs them: enforced security settings, probes, metrics, gRPC health,
and a purchase end to end through the frontend, once with the JSON API and once with the HTML forms."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from tests.containers.engine import Docker, process_status
from tests.containers.kubelet import Cluster
from tests.containers.report import REPORT
from tests.containers.shop import Shop, grpc_health, probe_passes

ADDRESS = {
    "name": "Eve",
    "street": "Keizersgracht 1",
    "city": "Amsterdam",
    "postal_code": "1015 CJ",
    "country": "NL",
}
CARD = {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"}


def test_every_container_runs_with_what_its_pod_spec_asks(
    shop: Shop, cluster: Cluster, docker: Docker
) -> None:
    """Read back from the kernel (/proc/<pid>/status) and the engine what each container really got."""
    for service, container in shop.containers.items():
        pod = cluster.pod_spec(service)
        spec = cluster.container(service)
        security = {**pod.get("securityContext", {}), **spec.get("securityContext", {})}
        status = process_status(container.pid)
        assert (status.uid, status.gid) == (security["runAsUser"], security["runAsGroup"]), service
        assert security["fsGroup"] in status.groups, service
        if spec["securityContext"]["capabilities"]["drop"] == ["ALL"]:
            assert status.effective_capabilities == 0, service
        assert status.no_new_privs is (spec["securityContext"]["allowPrivilegeEscalation"] is False), service
        assert status.seccomp_filtering, f"{service}: RuntimeDefault seccomp is not applied"
        host = docker.inspect(container.name)["HostConfig"]
        assert host["ReadonlyRootfs"] is spec["securityContext"]["readOnlyRootFilesystem"], service
        assert host["Memory"] == container.plan.memory_limit_bytes, service
        assert host["NanoCpus"] == round((container.plan.cpu_limit or 0) * 1e9), service
        mounts = {m["mountPath"] for m in spec.get("volumeMounts", [])}
        assert set(host.get("Tmpfs") or {}) <= mounts, f"{service}: a tmpfs where the pod has no emptyDir"


def test_the_root_filesystem_is_read_only_and_tmp_is_writable(shop: Shop, docker: Docker) -> None:
    container = shop.containers["order"]
    probe = (
        "import errno\n"
        "try:\n    open('/app/written-at-runtime', 'w')\n"
        "except OSError as e:\n    print(errno.errorcode[e.errno])\n"
        "open('/tmp/scratch', 'w').write('ok'); print(open('/tmp/scratch').read())"
    )
    out = docker("exec", container.name, "/usr/bin/python3", "-c", probe).stdout.split()
    assert out == ["EROFS", "ok"]


def test_every_probe_and_metrics_endpoint_answers(shop: Shop) -> None:
    for service, container in shop.containers.items():
        assert container.plan.probes, f"{service}: no probes in its pod spec"
        for probe in container.plan.probes:
            assert probe_passes(probe), f"{service}: {probe.kind} probe {probe.url} fails"
        for path in ("/healthz", "/readyz"):
            response = httpx.get(container.http + path, timeout=5)
            assert response.status_code == 200, f"{service} {path}: {response.status_code} {response.text}"
        metrics = httpx.get(container.http + "/metrics", timeout=5)
        assert metrics.status_code == 200 and "text/plain" in metrics.headers["content-type"]
        assert "http_requests_total{" in metrics.text, f"{service}: no request counter in /metrics"


def test_the_grpc_inventory_answers_its_health_service(shop: Shop) -> None:
    probes = [p for p in shop.containers["product"].plan.probes if p.handler == "grpc"]
    assert probes, "product's pod spec has no gRPC probe"
    target = probes[0].url
    assert grpc_health(target) == "SERVING"
    assert grpc_health(target, "shop.inventory.v1.Inventory") == "SERVING"


def _wait_for_shipment(get_order: object, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    order: dict[str, object] = {}
    while time.monotonic() < deadline:
        order = get_order()  # type: ignore[operator]
        if order.get("status") == "shipped":
            break
        time.sleep(1)
    return order


def test_a_purchase_through_the_json_api(shop: Shop) -> None:
    started = time.monotonic()
    with httpx.Client(base_url=shop.containers["frontend"].http, timeout=30) as api:
        email = f"json-{uuid.uuid4().hex[:8]}@example.com"
        registered = api.post("/api/register", json={"email": email, "password": "pa55word!x", "name": "Eve"})
        assert registered.status_code == 201, registered.text
        login = api.post("/api/login", json={"email": email, "password": "pa55word!x"})
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        product = next(p for p in api.get("/api/products").json()["items"] if p["stock"] >= 2)
        added = api.post("/api/cart/items", json={"product_id": product["id"], "quantity": 2}, headers=auth)
        assert added.status_code in (200, 201), added.text
        checkout = api.post(
            "/api/checkout",
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
            json={"shipping_address": ADDRESS, "card": CARD},
        )
        assert checkout.status_code == 201, checkout.text
        order = checkout.json()
        assert order["status"] == "paid" and order["tracking_number"]
        assert order["total_cents"] >= 2 * product["price_cents"]
        notifications = api.get("/api/notifications", headers=auth).json()["items"]
        assert any(n.get("order_id") == order["id"] for n in notifications)
    REPORT["purchases"].append(
        f"\npurchase (JSON API): {email} bought 2 x {product['id']}: order {order['id']} {order['status']}, "
        f"total {order['total_cents'] / 100:.2f} {product.get('currency', '')}, "
        f"tracking {order['tracking_number']} "
        f"({time.monotonic() - started:.1f}s)"
    )


def _field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} field on the page"
    return match.group(1)


def test_a_purchase_through_the_html_forms(shop: Shop) -> None:
    """What a browser does: read each form, post it with its CSRF token, follow the 303 to the next page."""
    started = time.monotonic()
    email = f"html-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(
        base_url=shop.containers["frontend"].http, timeout=30, follow_redirects=True
    ) as browser:
        form = browser.get("/register")
        assert form.status_code == 200
        welcome = browser.post(
            "/register",
            data={
                "csrf_token": _field(form.text, "csrf_token"),
                "next": "/",
                "name": "Hana",
                "email": email,
                "password": "pa55word!x",
            },
        )
        assert welcome.status_code == 200, welcome.text[-1000:]
        assert "Welcome! Your account is ready." in welcome.text and f"Signed in as {email}" in welcome.text
        catalog = browser.get("/")
        product_id = re.findall(r'href="/products/([a-z0-9-]+)"', catalog.text)[0]
        page = browser.get(f"/products/{product_id}")
        cart = browser.post(
            "/cart/items",
            data={"csrf_token": _field(page.text, "csrf_token"), "product_id": product_id, "quantity": "1"},
        )
        assert cart.url.path == "/cart" and "Added to your cart." in cart.text, cart.text[-1000:]
        checkout = browser.get("/checkout")
        assert checkout.status_code == 200, checkout.text[-500:]
        placed = browser.post(
            "/checkout",
            data={
                "csrf_token": _field(checkout.text, "csrf_token"),
                "idempotency_key": _field(checkout.text, "idempotency_key"),
                **ADDRESS,
                "card_number": "4242 4242 4242 4242",
                "expiry": "12/30",
                "cvc": "123",
            },
        )
        assert placed.status_code == 200, placed.text[-1000:]
        assert placed.url.path.startswith("/orders/"), placed.url
        order_id = placed.url.path.rsplit("/", 1)[-1]
        assert "Thank you! Your order is placed." in placed.text
        assert "paid" in placed.text.lower()
        orders = browser.get("/orders")
        assert order_id in orders.text
    REPORT["purchases"].append(
        f"purchase (HTML forms): {email} bought 1 x {product_id}: order {order_id} placed, paid "
        f"({time.monotonic() - started:.1f}s)"
    )


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_the_frontend_pages_render(shop: Shop, path: str) -> None:
    response = httpx.get(shop.containers["frontend"].http + path, timeout=10)
    assert response.status_code == 200 and "<html" in response.text.lower()
