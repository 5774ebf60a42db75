"""The simulated card processor: its test cards, decline messages and card brands. The card shape and its
checks are the shared contract `services.contracts.CardIn`. Card numbers are never stored or logged."""

from __future__ import annotations

from dataclasses import dataclass

# Documented test cards (docs/architecture.md): number -> decline code (None = success).
TEST_CARDS: dict[str, str | None] = {
    "4242424242424242": None,
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
}
DECLINE_MESSAGES = {
    "card_declined": "the card was declined",
    "insufficient_funds": "the card has insufficient funds",
}


def brand(digits: str) -> str:
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"51", "52", "53", "54", "55"} or "2221" <= digits[:4] <= "2720":
        return "mastercard"
    if digits[:2] in {"34", "37"}:
        return "amex"
    return "card"


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    decline_code: str | None = None
    provider_charge_id: str | None = None


def simulate(digits: str) -> Outcome:
    """The built-in processor: test cards decline as documented, any other valid card succeeds."""
    code = TEST_CARDS.get(digits)
    return Outcome(succeeded=code is None, decline_code=code)
