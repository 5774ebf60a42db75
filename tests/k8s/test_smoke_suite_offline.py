"""The live smoke tests' HTTP steps, run against the shop as local processes (`make dev`'s stack).

This does not replace `make verify` (the pods, the kind entry point and MongoDB are only checked on a
cluster); it proves the smoke suite speaks the frontend's real API, so a skipped live test is not also a
broken one.
"""

from __future__ import annotations

import httpx

from tests.cluster import test_smoke as smoke


def test_shop_page_check_passes_on_the_real_frontend(shop_stack: str) -> None:
    smoke.test_shop_is_reachable_through_the_kind_entry_point(shop_stack)


def test_checkout_check_passes_on_the_real_services(shop_stack: str) -> None:
    with httpx.Client(base_url=shop_stack, timeout=20, follow_redirects=False) as http:
        smoke.test_one_checkout_succeeds(http)
