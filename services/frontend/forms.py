"""Request models: the JSON API's bodies and the web forms (same rules, friendly messages for forms)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
# Strict: JSON `true` or `"2"` is not a quantity (order refuses them too; lax ints would let them through).
Quantity = Annotated[int, Field(strict=True, ge=1, le=99)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    email: Email
    password: Password
    name: Text
    beta_tester: bool = False

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "ada@example.com", "password": "correct horse", "name": "Ada"}]
        },
    )


class LoginIn(Strict):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class CartItemIn(Strict):
    product_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    quantity: Quantity = 1


class QuantityIn(Strict):
    quantity: Annotated[int, Field(ge=0, le=99)]


class Address(Strict):
    name: Text
    street: Text
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=16)]
    country: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$")]


class Card(Strict):
    number: str
    expiry: str
    cvc: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{3,4}$")]

    @field_validator("number")
    @classmethod
    def _digits(cls, value: str) -> str:
        digits = re.sub(r"[\s-]", "", value)
        if not re.fullmatch(r"\d{12,19}", digits):
            raise ValueError("card number must be 12 to 19 digits")
        return digits

    @field_validator("expiry")
    @classmethod
    def _month_year(cls, value: str) -> str:
        value = value.strip()
        match = re.fullmatch(r"(\d{2})\s*/\s*(\d{2}|\d{4})", value)
        if not match or not 1 <= int(match.group(1)) <= 12:
            raise ValueError("expiry must look like MM/YY")
        return f"{match.group(1)}/{match.group(2)[-2:]}"


class CheckoutIn(Strict):
    shipping_address: Address
    card: Card

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "shipping_address": {
                        "name": "Ada Lovelace",
                        "street": "Kerkstraat 1",
                        "city": "Amsterdam",
                        "postal_code": "1017 GA",
                        "country": "NL",
                    },
                    "card": {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"},
                }
            ]
        },
    )


FIELD_LABELS = {"number": "card number", "cvc": "CVC", "postal_code": "postal code"}


# The checkout form's input names for nested model fields.
FORM_NAMES = {"number": "card_number"}


def form_errors(exc: ValidationError) -> dict[str, str]:
    """Form input name -> a short message a shopper understands."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][-1]) if error["loc"] else "form"
        label = FIELD_LABELS.get(field, field.replace("_", " "))
        kind = error["type"]
        if kind in {"missing", "string_too_short"} and error.get("input") in (None, ""):
            message = f"Please fill in your {label}."
        elif kind == "string_pattern_mismatch" and field == "email":
            message = "Please enter a valid email address."
        elif kind == "string_pattern_mismatch" and field == "country":
            message = "Use a two-letter country code, e.g. NL."
        elif kind == "string_too_short" and field == "password":
            message = "Passwords need at least 8 characters."
        elif kind.startswith("int") or kind.endswith("_parsing"):
            message = f"Please enter a whole number for {label}."
        else:
            message = str(error["msg"]).removeprefix("Value error, ").capitalize()
        errors.setdefault(FORM_NAMES.get(field, field), message)
    return errors


def parse_form(model: type[Strict], data: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """(the model, {}) or (None, friendly errors)."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, form_errors(exc)
