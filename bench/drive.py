"""Driving one case against one running shop: wrk for single endpoints, asyncio shoppers for the journey."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bench import shoppers, wrk
from bench.cases import JOURNEYS, Case
from bench.result import Result
from bench.stacks import Shop

# Add to cart cycles through 20 shoppers x the products, one unit a request, and the carts are emptied after
# each run: at 150 requests a second a line reaches ~5 units in a 10 s run with its warm-up, so only the
# products with at least this many units left are used.
CART_LINE_UNITS = 15


@dataclass
class Target:
    """Everything one (code, store) offers the cases: the shop, its shoppers and the stock they may buy."""

    shop: Shop
    cart_tokens: list[str] = field(default_factory=list)
    journey_tokens: list[str] = field(default_factory=list)
    catalog: shoppers.Catalog | None = None


def prepare_shoppers(target: Target, cases: list[Case], count: int, label: str) -> None:
    """Accounts for the cases that need a logged-in shopper (registered through the frontend)."""
    frontend = target.shop.url("frontend")
    prefix = f"bench-{int(time.time())}-{label.replace(' ', '-').replace('+', '-')}"
    names = {case.name for case in cases}
    if "add-to-cart" in names:
        target.cart_tokens = asyncio.run(shoppers.accounts(frontend, f"{prefix}-cart", count))
    if names & JOURNEYS:
        target.journey_tokens = asyncio.run(shoppers.accounts(frontend, f"{prefix}-buy", count))
    target.catalog = asyncio.run(shoppers.catalog(frontend))


def drive(
    case: Case, target: Target, url: str, seconds: float, connections: int, think: tuple[float, float]
) -> Result:
    """Load `url` as the case says for `seconds` (`think`: the journey's pause between steps, lowest-highest
    seconds, for the cases that think)."""
    if case.journey:
        assert target.catalog is not None
        pause = think if case.think else (0.0, 0.0)
        outcome = asyncio.run(shoppers.journeys(url, target.journey_tokens, target.catalog, seconds, pause))
        steps = ", ".join(
            f"{name} p50 {r.p50_ms:.0f} ms p99 {r.p99_ms:.0f} ms" for name, r in outcome.steps.items()
        )
        print(f"    {case.name}: {outcome.result.requests} journeys; per answer: {steps}", flush=True)
        if outcome.failures:
            print(f"    journey failures: {outcome.failures}", flush=True)
        if outcome.sold_out:
            print("    the catalog sold out: the journey stopped early", flush=True)
        return outcome.result
    requests = list(case.requests)
    if case.name == "add-to-cart":
        assert target.catalog is not None
        plentiful = target.catalog.plentiful(CART_LINE_UNITS) or target.catalog.product_ids
        requests = shoppers.add_to_cart_requests(target.cart_tokens, plentiful)
    return wrk.run(url, requests, seconds=seconds, connections=connections)


def after(case: Case, target: Target) -> None:
    """Undo what a run left behind that would change the next run (not measured)."""
    if case.name == "add-to-cart":
        asyncio.run(shoppers.empty_carts(target.shop.url("order"), target.cart_tokens))
