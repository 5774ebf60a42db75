"""Shipping zones and prices: a base fee per zone plus a fee per started kilogram."""

from __future__ import annotations

from dataclasses import dataclass

HOME_COUNTRY = "NL"
EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT PL PT RO SE SI SK".split()  # noqa: SIM905
)


@dataclass(frozen=True)
class Zone:
    name: str
    carrier: str
    base_cents: int
    per_kg_cents: int
    estimated_days: int


ZONES = {
    "domestic": Zone("domestic", "ShopPost", 495, 100, 1),
    "eu": Zone("eu", "ShopPost Europe", 995, 250, 3),
    "world": Zone("world", "ShopPost International", 1995, 600, 7),
}


def zone_for(country: str) -> Zone:
    code = country.upper()
    if code == HOME_COUNTRY:
        return ZONES["domestic"]
    return ZONES["eu"] if code in EU_COUNTRIES else ZONES["world"]


def price_cents(zone: Zone, weight_grams: int) -> int:
    kilograms = -(-weight_grams // 1000)  # started kilograms
    return zone.base_cents + zone.per_kg_cents * kilograms
