"""Helpers every service's tests share (fixtures are in the conftest.py files)."""

from __future__ import annotations

from typing import Any


def error_code(response: Any) -> str:
    """The `code` of the kit's JSON error body (`{"error": {"code", "message", "details"}}`)."""
    code: str = response.json()["error"]["code"]
    return code


# A valid shipping address (services.contracts.Address) and values no service may accept in it: the
# Address rule is one rule everywhere (path-like values, control characters, unassigned countries).
ADDRESS = {
    "name": "Ada Lovelace",
    "street": "Kerkstraat 1",
    "city": "Amsterdam",
    "postal_code": "1017 GA",
    "country": "NL",
}
PLANTED_ADDRESS_VALUES = [
    ("country", "../../etc/passwd"),
    ("country", "nl"),
    ("country", "XX"),
    ("country", "Netherlands"),
    ("street", "../../etc/passwd"),
    ("street", "Kerkstraat 1\x00"),
    ("name", "Ada\nLovelace"),
    ("name", "Ada\x1b[31mLovelace"),
    ("city", "Amsterdam\u202egnp.exe"),
    ("city", "Amster\u2028dam"),
    ("postal_code", "1017/GA"),
    ("postal_code", "1"),
]
PLANTED_IDS = [f"{field}={value!r}" for field, value in PLANTED_ADDRESS_VALUES]


def planted_address(field: str, value: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (ADDRESS by default) with one planted value."""
    return {**(base or ADDRESS), field: value}


def assert_refused_field(response: Any, field: str) -> None:
    """A 422 JSON `validation_error` whose details name `field`."""
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(detail["loc"][-1] == field for detail in error["details"]), error
