"""The shared contracts (services/contracts): one Address rule and one card rule for every service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.contracts import Address, CardIn, CartItemIn, CheckoutIn, SavedAddress
from services.contracts.card import CardError, parse_expiry
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


# The message a JSON API caller reads in the 422 (the web shop words it by the type).
CARD_MESSAGES = {
    "card_number_length": "card number must have 12 to 19 digits",
    "card_number_luhn": "card number fails the Luhn check",
    "card_expiry_format": "expiry must look like MM/YY",
    "card_expiry_month": "expiry month must be 01-12",
    "card_expired": "card has expired",
}
CARD_REFUSALS = [
    ("number", "4242 4242 4242 4241", "card_number_luhn"),
    ("number", "4242 4242 4242 4a42", "card_number_length"),
    ("number", "42424242428", "card_number_length"),  # 11 digits
    ("number", "4" * 19 + "2", "card_number_length"),  # 20 digits
    ("expiry", "1230", "card_expiry_format"),
    ("expiry", "12/3", "card_expiry_format"),
    ("expiry", "3/39", "card_expiry_format"),
    ("expiry", "00/30", "card_expiry_month"),
    ("expiry", "13/30", "card_expiry_month"),
    ("expiry", "01/21", "card_expired"),
    ("expiry", "12/2020", "card_expired"),
]


@pytest.mark.parametrize(
    ("field", "value", "reason"), CARD_REFUSALS, ids=[r[2] + ":" + r[1] for r in CARD_REFUSALS]
)
def test_each_card_refusal_names_its_field_and_reason(field: str, value: str, reason: str) -> None:
    """The shop marks the field and explains it by the error's type: each refusal must carry its own."""
    card = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123", field: value}
    with pytest.raises(ValidationError) as refused:
        CardIn.model_validate(card)
    [error] = refused.value.errors()
    assert (error["loc"], error["type"], error["msg"]) == ((field,), reason, CARD_MESSAGES[reason])


@pytest.mark.parametrize(
    "number",
    ["4242 4242 4242 4242", "5555 5555 5555 4444", "3782 822463 10005", "4" * 11 + "2", "4" * 18 + "2"],
)
def test_valid_card_numbers_of_12_to_19_digits_are_accepted_as_digits(number: str) -> None:
    card = CardIn.model_validate({"number": number, "expiry": "12/39", "cvc": "1234"})
    assert card.number == number.replace(" ", "")


def test_a_card_expires_after_its_month_not_before() -> None:
    """A card is valid through the last day of its expiry month, whatever year form the shopper typed."""
    last_day = datetime(2027, 2, 28, 23, 59, tzinfo=UTC)
    assert parse_expiry("02/27", now=last_day) == (2, 2027)
    assert parse_expiry("02 / 2027", now=last_day) == (2, 2027)
    assert parse_expiry("12/26", now=datetime(2026, 12, 1, tzinfo=UTC)) == (12, 2026)
    for expired, now in (("01/27", last_day), ("12/26", datetime(2027, 1, 1, tzinfo=UTC))):
        with pytest.raises(CardError) as refused:
            parse_expiry(expired, now=now)
        assert refused.value.code == "card_expired"
