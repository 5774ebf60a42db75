"""Helpers every service's tests share (fixtures are in the conftest.py files)."""

from __future__ import annotations

from typing import Any


def error_code(response: Any) -> str:
    """The `code` of the kit's JSON error body (`{"error": {"code", "message", "details"}}`)."""
    code: str = response.json()["error"]["code"]
    return code
