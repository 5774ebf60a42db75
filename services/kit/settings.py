"""Settings from environment variables, validated once at start."""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services import topology


class ServiceSettings(BaseSettings):
    """What every service reads from its environment. A service's `Settings` subclasses this (plus
    `DatabaseSettings` and/or `TokenSettings` when it has a database or verifies tokens) and names, as URL
    settings, only the neighbours it calls (docs/architecture.md, "Who calls whom"; a test checks it)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    service_name: str = "service"
    version: str = "v1"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"

    # The claims of the shop's access tokens: auth issues them, the others verify them.
    jwt_issuer: str = "shop-auth"
    jwt_audience: str = "shop"

    http_connect_timeout: float = Field(default=2.0, gt=0)
    http_read_timeout: float = Field(default=5.0, gt=0)
    grpc_timeout: float = Field(default=5.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level


class DatabaseSettings(ServiceSettings):
    """A service with a MongoDB database of its own (neighbour `mongodb`). `create_app` connects it as
    `app.state.db` and pings it in /readyz; MONGO_URL unset = the in-memory store (dev and tests only)."""

    mongo_url: str | None = None
    mongo_db: str | None = None

    @property
    def database_name(self) -> str:
        return self.mongo_db or self.service_name


class TokenSettings(ServiceSettings):
    """A service that verifies access tokens (neighbour `auth`, for its JWKS). `create_app` gives it
    `app.state.verifier`, which the kit's `CurrentUser`/`AdminUser`/`Caller` dependencies use."""

    auth_jwks_url: str = f"{topology.dev_url('auth')}/.well-known/jwks.json"


# URL settings that point outside the shop, so they name no neighbour of the call graph.
EXTERNAL_URL_SETTINGS = {"provider_url": "payment's card provider outside the shop (the egress lab)"}


def neighbour_settings(cls: type[ServiceSettings]) -> dict[str, str]:
    """The settings of `cls` that say where a neighbour is, and the neighbour each names: `<service>_url`
    and `<service>_grpc_target` -> that service, `auth_jwks_url` -> auth, `mongo_url` -> mongodb."""
    found: dict[str, str] = {}
    for name in cls.model_fields:
        if name == "mongo_url":
            found[name] = "mongodb"
        elif name == "auth_jwks_url":
            found[name] = "auth"
        elif name.endswith("_grpc_target"):
            found[name] = name.removesuffix("_grpc_target")
        elif name.endswith("_url") and name not in EXTERNAL_URL_SETTINGS:
            found[name] = name.removesuffix("_url")
    return found


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


class SettingsError(SystemExit):
    """Raised (and exits with status 2) when the environment is invalid."""


class ConfigurationError(Exception):
    """Raise while building the app when the environment cannot work (an unusable key file, no MONGO_URL in an
    image); `services.kit.serve.serve` ends the service with exit status 1 and this one-line reason."""


def load_settings(cls: type[SettingsT], **overrides: object) -> SettingsT:
    """Read settings from the environment; on bad values print which variable is wrong and exit."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"invalid configuration for {cls.__name__}:"]
        for err in exc.errors():
            variable = ".".join(str(part) for part in err["loc"]).upper()
            lines.append(f"  {variable}: {err['msg']} (got {err.get('input')!r})")
        print("\n".join(lines), file=sys.stderr)
        raise SettingsError(2) from None
