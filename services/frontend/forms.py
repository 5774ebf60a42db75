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


class ProfileIn(Strict):
    name: Text
    phone: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 ()\-]{4,24}$")] | None
    ) = None


FIELD_LABELS = {
    "number": "card number",
    "card_number": "card number",
    "cvc": "CVC",
    "postal_code": "postal code",
    "street": "street and number",
    "name": "name",
}
# The checkout form's input names for nested model fields.
FORM_NAMES = {"number": "card_number"}
# Plain words per error type, whoever found it (these forms, or a service's 422 details). A pydantic text
# ("String should match pattern '^[A-Z]{2}$'") never reaches a shopper.
CARD_MESSAGES = {
    "card_number_length": "A card number has 12 to 19 digits.",
    "card_number_luhn": "That card number is not valid: please check the digits.",
    "card_expiry_format": "Enter the expiry as MM/YY, for example 12/30.",
    "card_expiry_month": "The expiry month must be 01 to 12.",
    "card_expired": "This card has expired: please use another card.",
}
PATTERN_MESSAGES = {
    "email": "Please enter a valid email address.",
    "country": "Use a two-letter country code, for example NL.",
    "cvc": "The CVC is the 3 or 4 digits on the back of your card.",
    "phone": "Please enter a phone number with digits, spaces and an optional +.",
}


def plain_message(
    field: str, kind: str, ctx: dict[str, Any] | None = None, given: Any = "?", msg: str = ""
) -> str:
    """Plain words for one error of `field` (`kind`: pydantic's or a service's error type).

    `given` is the input when known ("?" when not, e.g. an error reported by another service)."""
    label = FIELD_LABELS.get(field, field.replace("_", " "))
    ctx = ctx or {}
    if kind in CARD_MESSAGES:
        return CARD_MESSAGES[kind]
    if kind == "missing" or (kind == "string_too_short" and given in (None, "")):
        return f"Please fill in your {label}."
    if kind == "string_too_short":
        if field == "password":
            return "Passwords need at least 8 characters."
        return f"Your {label} is too short." + (
            f" Use at least {ctx['min_length']} characters." if "min_length" in ctx else ""
        )
    if kind == "string_too_long":
        limit = f" to {ctx['max_length']} characters" if "max_length" in ctx else ""
        return f"Your {label} is too long: please keep it{limit or ' shorter'}."
    if kind == "string_pattern_mismatch":
        return PATTERN_MESSAGES.get(field, f"Please check your {label}: it has characters we cannot accept.")
    if kind.startswith(("int", "float", "bool")) or kind.endswith("_parsing"):
        return f"Please enter a whole number for {label}."
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        low, high = ctx.get("ge", ctx.get("gt")), ctx.get("le", ctx.get("lt"))
        if low is not None and high is not None:
            return f"Please enter a number from {low} to {high} for {label}."
        return f"Please enter a {'bigger' if kind.startswith('greater') else 'smaller'} number for {label}."
    if kind == "value_error" and msg:  # the shop's own validators write plain words already
        text = msg.removeprefix("Value error, ")
        return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
    return f"Please check your {label}."


def plain_errors(errors: list[dict[str, Any]]) -> dict[str, str]:
    """Form input name -> message, from pydantic's `errors()` or a service's 422 `details`
    (`[{"loc": [...], "msg", "type"}]`); the first error of each field wins."""
    out: dict[str, str] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc") or ()]
        field = loc[-1] if loc else "form"
        message = plain_message(
            field,
            str(error.get("type", "")),
            error.get("ctx"),
            error.get("input", "?"),
            str(error.get("msg", "")),
        )
        out.setdefault(FORM_NAMES.get(field, field), message)
    return out


def form_errors(exc: ValidationError) -> dict[str, str]:
    """Form input name -> a short message a shopper understands."""
    return plain_errors([dict(e) for e in exc.errors()])


def parse_form(model: type[BaseModel], data: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """(the model, {}) or (None, friendly errors)."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, form_errors(exc)
