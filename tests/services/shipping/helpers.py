"""Helpers of the shipping tests."""

from __future__ import annotations

from fastapi import FastAPI

from services.kit.testing import TokenFactory
from services.shipping.app import build_app
from services.shipping.settings import Settings


def shipping_app(settings: Settings) -> tuple[FastAPI, TokenFactory]:
    """The shipping app and a TokenFactory it trusts."""
    app = build_app(settings)
    return app, TokenFactory().trust_in(app)
