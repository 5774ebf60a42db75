"""The shared service kit: every service builds its app with `create_app` from here."""

from services.kit.app import create_app
from services.kit.errors import ApiError
from services.kit.settings import ServiceSettings, load_settings

__all__ = ["ApiError", "ServiceSettings", "create_app", "load_settings"]
