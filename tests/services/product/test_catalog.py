"""product service, catalog REST API: paging, filters, search, images, v1/v2 differences, seeding."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from pymongo.errors import ServerSelectionTimeoutError

from scripts.dev import free_port
from services.product import store
from services.product.app import build_app
from services.product.catalog import CATEGORIES, PRODUCTS
from services.product.settings import Settings
from tests.services.product.in_process import catalog_client

PRODUCT_FIELDS = {
    "id",
    "name",
    "description",
    "category",
    "price_cents",
    "currency",
    "stock",
    "image",
    "icon",
    "weight_grams",
}


def test_first_page_lists_twenty_products_sorted_by_name(client: TestClient) -> None:
    response = client.get("/products")
    assert response.status_code == 200
    assert response.headers["x-served-by"] == "product/v1"
    body = response.json()
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, len(PRODUCTS))
    names = [item["name"] for item in body["items"]]
    assert len(names) == 20
    assert names == sorted(names)
    for item in body["items"]:
        assert set(item) == PRODUCT_FIELDS  # v1 has no badge at all
        assert isinstance(item["price_cents"], int) and item["price_cents"] > 0
        assert item["currency"] == "EUR"


def test_pages_cover_the_catalog_without_overlap(client: TestClient) -> None:
    first = client.get("/products", params={"page": 1, "page_size": 10}).json()["items"]
    second = client.get("/products", params={"page": 2, "page_size": 10}).json()["items"]
    third = client.get("/products", params={"page": 3, "page_size": 10}).json()["items"]
    ids = [p["id"] for p in first + second + third]
    assert len(ids) == len(set(ids)) == len(PRODUCTS)
    beyond = client.get("/products", params={"page": 4, "page_size": 10}).json()
    assert beyond["items"] == [] and beyond["total"] == len(PRODUCTS)


def test_catalog_is_realistic() -> None:
    assert len(PRODUCTS) >= 24
    assert len(CATEGORIES) >= 5
    per_category = {c.id: sum(p.category == c.id for p in PRODUCTS) for c in CATEGORIES}
    assert min(per_category.values()) >= 4, per_category


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page": -1}, {"page": "one"}, {"page_size": 0}, {"page_size": 101}, {"q": "x" * 101}],
)
def test_bad_paging_and_search_parameters_are_422(client: TestClient, params: dict[str, object]) -> None:
    response = client.get("/products", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_category_filter(client: TestClient) -> None:
    body = client.get("/products", params={"category": "kitchen", "page_size": 100}).json()
    assert body["total"] == sum(p.category == "kitchen" for p in PRODUCTS)
    assert body["items"] and {item["category"] for item in body["items"]} == {"kitchen"}
    empty = client.get("/products", params={"category": "no-such-category"}).json()
    assert (empty["items"], empty["total"]) == ([], 0)


def test_search_is_a_case_insensitive_substring_of_the_name(client: TestClient) -> None:
    body = client.get("/products", params={"q": "TEA"}).json()
    assert [item["id"] for item in body["items"]] == ["sencha-green-tea"]
    both = client.get("/products", params={"q": "e", "category": "books", "page_size": 100}).json()
    assert both["total"] == sum(p.category == "books" and "e" in p.name.lower() for p in PRODUCTS)


@pytest.mark.parametrize("q", [".*", "(", "[a-z]+", "\\", "a|b", "?"])
def test_search_text_is_literal_not_a_regex(client: TestClient, q: str) -> None:
    response = client.get("/products", params={"q": q})
    assert response.status_code == 200
    assert response.json()["total"] == 0


def test_search_matches_regex_characters_literally(client: TestClient) -> None:
    # "Chef's Knife 20 cm": a quote and digits are matched as typed.
    body = client.get("/products", params={"q": "chef's"}).json()
    assert [item["id"] for item in body["items"]] == ["chef-knife"]


def test_get_one_product(client: TestClient) -> None:
    response = client.get("/products/cast-iron-skillet")
    assert response.status_code == 200
    product = response.json()
    assert set(product) == PRODUCT_FIELDS
    assert product["name"] == "Cast-Iron Skillet 26 cm"
    assert product["price_cents"] == 3995
    assert product["image"] == "/products/images/kitchen.svg"
    assert product["weight_grams"] == 2600  # what order asks shipping to quote


def test_every_product_has_a_plausible_shipping_weight() -> None:
    assert all(50 <= p.weight_grams <= 20_000 for p in PRODUCTS), [(p.id, p.weight_grams) for p in PRODUCTS]


def test_unknown_product_is_404_with_a_json_error(client: TestClient) -> None:
    response = client.get("/products/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "product_not_found"
    assert client.get("/products/" + "x" * 129).status_code == 422


def test_catalog_is_read_only(client: TestClient) -> None:
    response = client.post("/products", json={"name": "free stuff"})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_categories_with_counts(client: TestClient) -> None:
    response = client.get("/categories")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [c["id"] for c in items] == [c.id for c in CATEGORIES]
    assert sum(c["product_count"] for c in items) == len(PRODUCTS)
    assert all(c["name"] and c["icon"] and c["image"].endswith(".svg") for c in items)


def test_every_product_image_is_served_as_svg(client: TestClient) -> None:
    images = {item["image"] for item in client.get("/products", params={"page_size": 100}).json()["items"]}
    assert len(images) == len(CATEGORIES)
    for image in images:
        response = client.get(image)
        assert response.status_code == 200, image
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.text.startswith("<svg") and "</svg>" in response.text


def test_unknown_image_is_404(client: TestClient) -> None:
    for path in ("/products/images/nothing.svg", "/products/images/..%2Fapp.svg"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"


def test_v2_shows_a_badge_field_on_every_product(client_v2: TestClient) -> None:
    response = client_v2.get("/products", params={"page_size": 100})
    assert response.headers["x-served-by"] == "product/v2"
    items = response.json()["items"]
    assert all("badge" in item for item in items)
    badges = {item["id"]: item["badge"] for item in items}
    assert badges["cast-iron-skillet"] == "bestseller"
    assert badges["chef-knife"] is None
    assert {"new", "staff pick"} <= set(badges.values())
    assert client_v2.get("/products/book-istio-in-action").json()["badge"] == "staff pick"


def test_operational_endpoints_include_grpc_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"mongodb": "ok", "grpc_inventory": "ok"}
    client.get("/products/headlamp")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'route="/products/{product_id}"' in metrics.text  # by template, not one series per id


async def test_seeding_is_idempotent_and_never_resets_stock() -> None:
    app = build_app(Settings(grpc_port=free_port(), mongo_url=None))
    db = app.state.db
    await store.create_indexes(db)
    assert await store.seed_catalog(db) == len(PRODUCTS)
    await db.products.update_one({"_id": "headlamp"}, {"$set": {"stock": 3}})
    await db.products.update_one({"_id": "headlamp"}, {"$unset": {"weight_grams": ""}})  # as stored before
    # A restart, and two replicas starting at the same time.
    assert list(await asyncio.gather(store.seed_catalog(db), store.seed_catalog(db))) == [0, 0]
    assert await db.products.count_documents({}) == len(PRODUCTS)
    headlamp = await db.products.find_one({"_id": "headlamp"})
    assert (headlamp["stock"], headlamp["weight_grams"]) == (3, 150)  # stock kept, weight from the code


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPC_PORT", "19000")
    monkeypatch.setenv("VERSION", "v2")
    settings = Settings()
    assert (settings.service_name, settings.port, settings.grpc_port, settings.version) == (
        "product",
        8083,
        19000,
        "v2",
    )


@pytest.mark.parametrize("env", [{"GRPC_PORT": "0"}, {"GRPC_PORT": "nine"}, {"GRPC_PORT": "8083"}])
def test_bad_settings_stop_the_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_info:
        build_app()
    assert exit_info.value.code == 2
    assert "invalid configuration for Settings" in capsys.readouterr().err


def test_a_database_outage_is_503_not_500() -> None:
    with catalog_client() as test_client:
        db = test_client.app.state.db  # type: ignore[attr-defined]

        class Down:
            def __getattr__(self, name: str) -> object:
                raise ServerSelectionTimeoutError("mongodb:27017: timed out")

        test_client.app.state.db = type("DownDb", (), {"products": Down()})()  # type: ignore[attr-defined]
        try:
            for path in ("/products", "/products/headlamp", "/categories"):
                response = test_client.get(path)
                assert response.status_code == 503, path
                assert response.json()["error"]["code"] == "database_unavailable"
        finally:
            test_client.app.state.db = db  # type: ignore[attr-defined]
