"""The shared service kit: every service builds its app with `create_app` from here."""

from services.kit import startup_imports  # noqa: F401 (first: it keeps some imports out)
from services.kit.app import create_app
from services.kit.errors import ApiError
from services.kit.settings import DatabaseSettings, ServiceSettings, TokenSettings, load_settings

__all__ = ["ApiError", "DatabaseSettings", "ServiceSettings", "TokenSettings", "create_app", "load_settings"]
