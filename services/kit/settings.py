"""Settings from environment variables, validated once at start."""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service reads from its environment. Services subclass this and set the defaults."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    service_name: str = "service"
    version: str = "v1"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"

    mongo_url: str | None = None
    mongo_db: str | None = None

    auth_jwks_url: str = "http://127.0.0.1:8081/.well-known/jwks.json"
    jwt_issuer: str = "shop-auth"
    jwt_audience: str = "shop"

    http_connect_timeout: float = Field(default=2.0, gt=0)
    http_read_timeout: float = Field(default=5.0, gt=0)
    grpc_timeout: float = Field(default=5.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)

    auth_url: str = "http://127.0.0.1:8081"
    user_url: str = "http://127.0.0.1:8082"
    product_url: str = "http://127.0.0.1:8083"
    payment_url: str = "http://127.0.0.1:8084"
    order_url: str = "http://127.0.0.1:8085"
    shipping_url: str = "http://127.0.0.1:8086"
    notification_url: str = "http://127.0.0.1:8087"
    product_grpc_target: str = "127.0.0.1:9000"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def database_name(self) -> str:
        return self.mongo_db or self.service_name


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
