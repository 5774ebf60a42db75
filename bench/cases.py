"""What `make bench` measures: the cases, what each is compared with, and the targets (issue 15).

A case names the process it drives (`target`: the bare reference app, a shop service, or a proxy in front
of product), the requests, and its reference case: the ratio column is the case's rate over the reference's
rate measured in the same run, on the same store and code. Cases marked `store_bound` read or write the
database and run once per store; the others only on the first store.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.wrk import Request

# The list size the catalog page asks for (frontend PAGE_SIZE) and the direct product call uses.
PAGE = "page=1&page_size=12"
SAMPLE_PRODUCT = "ethiopian-yirgacheffe-beans"


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    target: str  # "reference", a service name, or a proxy shape of bench/envoy.py in front of product
    requests: tuple[Request, ...] = ()  # empty: built at run time (add to cart) or not wrk (the journey)
    reference: str | None = None
    store_bound: bool = True
    every_tree: bool = True  # also measured on the baseline code (`--baseline`), side by side
    journey: bool = False
    think: bool = False  # the journey's shoppers pause between steps (`--think`), as `make load`'s do

    @property
    def needs_proxy(self) -> bool:
        return self.target in ("one_proxy", "mesh_hop")


CASES = (
    Case(
        "bare",
        "bare FastAPI+uvicorn /healthz (reference)",
        "reference",
        (Request(path="/healthz"),),
        store_bound=False,
        every_tree=False,
    ),
    Case(
        "kit-healthz",
        "product /healthz (the kit, no work)",
        "product",
        (Request(path="/healthz"),),
        reference="bare",
        store_bound=False,
    ),
    Case("product-list", "product /products (direct)", "product", (Request(path=f"/products?{PAGE}"),)),
    Case(
        "product-one-proxy",
        "product /products through one Envoy",
        "one_proxy",
        (Request(path=f"/products?{PAGE}"),),
        reference="product-list",
        store_bound=False,
        every_tree=False,
    ),
    Case(
        "product-mesh-hop",
        "product /products through two Envoys + mTLS",
        "mesh_hop",
        (Request(path=f"/products?{PAGE}"),),
        reference="product-list",
        store_bound=False,
        every_tree=False,
    ),
    Case(
        "frontend-api-products",
        "frontend /api/products (one hop to product)",
        "frontend",
        (Request(path=f"/api/products?{PAGE}"),),
        reference="product-list",
    ),
    Case(
        "catalog-page",
        "frontend / (catalog page: product list + HTML)",
        "frontend",
        (Request(path="/"),),
        reference="product-list",
    ),
    Case(
        "product-item",
        f"product /products/{SAMPLE_PRODUCT} (direct)",
        "product",
        (Request(path=f"/products/{SAMPLE_PRODUCT}"),),
    ),
    Case(
        "product-page",
        "frontend /products/<id> (product page)",
        "frontend",
        (Request(path=f"/products/{SAMPLE_PRODUCT}"),),
        reference="product-item",
    ),
    Case("add-to-cart", "frontend POST /api/cart/items (order -> product)", "frontend"),
    Case(
        "checkout-journey",
        "checkout journey, shoppers thinking 1-3 s: add to cart + check out (per journey)",
        "frontend",
        journey=True,
        think=True,
    ),
    Case(
        "checkout-capacity",
        "checkout journeys without thinking (saturation: the rate is the capacity)",
        "frontend",
        journey=True,
    ),
)
JOURNEYS = {case.name for case in CASES if case.journey}
BY_NAME = {case.name: case for case in CASES}


@dataclass(frozen=True)
class Target:
    """A goal of issue 15: `kind` is "ratio" (at least), "p99_ms" (at most) or "rss_mb" (at most)."""

    case: str
    kind: str
    limit: float
    text: str


TARGETS = (
    Target("kit-healthz", "ratio", 0.90, "kit /healthz >= 90 % of bare"),
    Target("frontend-api-products", "ratio", 0.70, "frontend /api/products >= 70 % of product direct"),
    Target("catalog-page", "ratio", 0.50, "catalog page >= 50 % of product direct"),
    Target("checkout-journey", "p99_ms", 250.0, "checkout journey p99 <= 250 ms (shoppers thinking 1-3 s)"),
    Target("*", "rss_mb", 80.0, "idle RSS <= 80 MB per service"),
)

# Idle anonymous memory, MB (bench/usage.py `anon_mb`: RSS without the mapped files), that a service of this
# checkout must not grow past: today's figure plus about 2 MB. `make bench` and `make bench-smoke` (in
# `make test`) fail when a service of this checkout starts past it: memory at idle does not depend on the
# machine's load, so a new import shows up here as it lands. Anonymous, not RSS: the RSS of the same code
# also counts the pages of the libraries it maps, which depend on the page cache (a fresh clone measured
# product 98.9 MB, this checkout 91, with the same anonymous memory; docs/performance.md, fourth pass).
# Measured 2026-12-01 (f5926e0, in-memory store): 52.7-53.4 MB for five services, frontend 55.2, product 57.1
# and order 57.6 (gRPC: 11.8 MB of RSS, docs/performance.md "Idle memory").
ANON_CEILING_MB = {"frontend": 57.5, "product": 59.0, "order": 59.5}
DEFAULT_ANON_CEILING_MB = 55.5


def anon_ceiling_mb(service: str) -> float:
    return ANON_CEILING_MB.get(service, DEFAULT_ANON_CEILING_MB)
