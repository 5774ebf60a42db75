"""The postal address every service takes (user, order, shipping, frontend): one model, one rule.

Every text field is stripped of surrounding whitespace and must be plain text: no control characters
(Unicode Cc: NUL, newlines, escapes), no line or paragraph separators, no bidirectional overrides (which
make a label display as something else), no private-use or surrogate code points, and no `..` path
segment (`../../etc/passwd`). `country` is an ISO 3166-1 alpha-2 code in capitals that ISO has assigned
(the `iso3166` package's list), `postal_code` holds letters, digits, spaces and hyphens only. A violation is
a 422 `validation_error` whose details name the field, in every service.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from iso3166 import countries_by_alpha2
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Zl", "Zp"})
_PATH_SEGMENT = re.compile(r"(^|[/\\])\.\.([/\\]|$)")
_POSTAL_CODE = re.compile(r"[A-Za-z0-9]+(?:[ -][A-Za-z0-9]+)*")


def plain_text(value: str) -> str:
    """`value` when it is plain text; ValueError naming what is not (see the module docstring)."""
    for char in value:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES or char in _BIDI_CONTROLS:
            raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    if _PATH_SEGMENT.search(value):
        raise ValueError("must not contain a '..' path segment")
    return value


def assigned_country(code: str) -> str:
    """`code` when ISO 3166-1 assigned it as an alpha-2 code; ValueError otherwise."""
    if code not in countries_by_alpha2:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code (e.g. NL)")
    return code


def postal_code(value: str) -> str:
    if not _POSTAL_CODE.fullmatch(value):
        raise ValueError("postal code may hold only letters, digits, spaces and hyphens")
    return value


def _length(low: int, high: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=low, max_length=high)


PLAIN_TEXT = AfterValidator(plain_text)
Label = Annotated[str, _length(1, 40), PLAIN_TEXT]
Name = Annotated[str, _length(1, 100), PLAIN_TEXT]
Street = Annotated[str, _length(1, 200), PLAIN_TEXT]
City = Annotated[str, _length(1, 100), PLAIN_TEXT]
PostalCode = Annotated[str, _length(2, 16), AfterValidator(postal_code)]
Country = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z]{2}$"), AfterValidator(assigned_country)
]


class Address(BaseModel):
    """Where a parcel goes. `label` names an entry of the address book (`home`); optional elsewhere."""

    model_config = ConfigDict(extra="forbid", strict=True)

    label: Label | None = Field(None, examples=["home"])
    name: Name = Field(examples=["Ada Lovelace"])
    street: Street = Field(examples=["Kerkstraat 1"])
    city: City = Field(examples=["Amsterdam"])
    postal_code: PostalCode = Field(examples=["1017 GA"])
    country: Country = Field(description="ISO 3166-1 alpha-2, in capitals", examples=["NL"])


class SavedAddress(Address):
    """An address-book entry (user): the same rules, and a label is required."""

    label: Label = Field(examples=["home"])
