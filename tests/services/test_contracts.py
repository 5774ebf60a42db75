"""The shared contracts (services/contracts): one Address rule and one card rule for every service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.contracts import Address, CardIn, CartItemIn, CheckoutIn, SavedAddress
from services.contracts.card import parse_expiry
from tests.services.helpers import ADDRESS, PLANTED_ADDRESS_VALUES, PLANTED_IDS, planted_address


@pytest.mark.parametrize(
    "address",
    [
        ADDRESS,
        {**ADDRESS, "name": "  Zoë Đurić  ", "street": "Straße 5/2", "city": "São Paulo", "country": "BR"},
        {**ADDRESS, "street": "St. John's Rd. 12...", "postal_code": "SW1A 1AA", "country": "GB"},
        {**ADDRESS, "name": "👩‍🔧 Ada", "postal_code": "00-950", "country": "PL", "label": "work"},
    ],
)
def test_real_addresses_are_accepted_and_trimmed(address: dict[str, str]) -> None:
    parsed = Address.model_validate(address)
    assert parsed.name == address["name"].strip()
    assert parsed.country == address["country"]


@pytest.mark.parametrize(("field", "value"), PLANTED_ADDRESS_VALUES, ids=PLANTED_IDS)
def test_path_like_control_and_unassigned_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Address.model_validate(planted_address(field, value))
    assert [e["loc"] for e in refused.value.errors()] == [(field,)]


def test_a_saved_address_needs_its_label_and_the_same_rules() -> None:
    assert SavedAddress.model_validate({**ADDRESS, "label": "home"}).label == "home"
    with pytest.raises(ValidationError):
        SavedAddress.model_validate(ADDRESS)
    with pytest.raises(ValidationError):
        SavedAddress.model_validate({**ADDRESS, "label": "home\x00"})


def test_the_country_message_says_what_to_type() -> None:
    with pytest.raises(ValidationError) as refused:
        Address.model_validate(planted_address("country", "XX"))
    assert "ISO 3166-1 alpha-2" in str(refused.value)


def test_one_card_rule_luhn_expiry_cvc() -> None:
    card = CardIn.model_validate({"number": "4242-4242 4242 4242", "expiry": "12 / 2030", "cvc": " 123 "})
    assert (card.number, card.expiry, card.cvc) == ("4242424242424242", "12/30", "123")
    for bad in (
        {"number": "4242 4242 4242 4241", "expiry": "12/30", "cvc": "123"},  # Luhn
        {"number": "4242 4242 4242 4242", "expiry": "01/21", "cvc": "123"},  # expired
        {"number": "4242 4242 4242 4242", "expiry": "13/30", "cvc": "123"},
        {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "12"},
        {"number": 4242424242424242, "expiry": "12/30", "cvc": "123"},
    ):
        with pytest.raises(ValidationError):
            CardIn.model_validate(bad)
    assert parse_expiry("02/27", now=datetime(2027, 2, 28, tzinfo=UTC)) == (2, 2027)


def test_what_the_frontend_sends_to_order() -> None:
    body = CheckoutIn.model_validate(CheckoutIn.model_config["json_schema_extra"]["examples"][0])  # type: ignore[index]
    assert body.shipping_address.country == "NL"
    assert CartItemIn.model_validate({"product_id": "headlamp"}).quantity == 1
    for bad in ({"product_id": "a b", "quantity": 1}, {"product_id": "x", "quantity": True}):
        with pytest.raises(ValidationError):
            CartItemIn.model_validate(bad)
