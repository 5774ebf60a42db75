"""Request models: the JSON API's bodies and the web forms (same rules, friendly messages for forms).

What the frontend passes on to order (`CartItemIn`, `CheckoutIn` with its `Address` and `CardIn`) is the
shared contract in `services.contracts`, so the frontend refuses exactly what order and payment would."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]


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


class QuantityIn(Strict):
    quantity: Annotated[int, Field(ge=0, le=99)]


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


def parse_form(model: type[BaseModel], data: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """(the model, {}) or (None, friendly errors)."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, form_errors(exc)
