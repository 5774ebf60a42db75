"""The signing key: loaded from JWT_PRIVATE_KEY_FILE / JWT_PRIVATE_KEY, or generated in dev mode."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi import Depends, Request

from services.auth.settings import Settings
from services.kit import jwt
from services.kit.deps import app_state
from services.kit.serve import ConfigurationError

log = logging.getLogger("auth.keys")
MIN_KEY_BITS = 2048


class SigningKeyError(ConfigurationError, ValueError):
    """The configured signing key is unusable; the message says why (raised at start, not per request)."""


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str
    source: str  # "file", "env" or "generated"

    def jwk(self) -> dict[str, Any]:
        return jwt.public_jwk(self.private_key, self.kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.sign(self.private_key, self.kid, claims)


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of an RSA public key."""
    required = {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _from_pem(pem: bytes, origin: str) -> rsa.RSAPrivateKey:
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{origin} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SigningKeyError(f"{origin} must be an RSA key (tokens are RS256), got {type(key).__name__}")
    if key.key_size < MIN_KEY_BITS:
        raise SigningKeyError(f"{origin} is a {key.key_size}-bit RSA key; {MIN_KEY_BITS} bits at least")
    return key


def load_signing_key(settings: Settings) -> SigningKey:
    if settings.jwt_private_key_file:
        path = Path(settings.jwt_private_key_file)
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"JWT_PRIVATE_KEY_FILE {path}: {exc.strerror}") from None
        key, source = _from_pem(pem, f"JWT_PRIVATE_KEY_FILE {path}"), "file"
    elif settings.jwt_private_key is not None:
        pem = settings.jwt_private_key.get_secret_value().encode()
        key, source = _from_pem(pem, "JWT_PRIVATE_KEY"), "env"
    else:
        log.warning(
            "JWT_PRIVATE_KEY_FILE and JWT_PRIVATE_KEY are unset: generated a throw-away signing key. "
            "Tokens will not survive a restart and replicas will not trust each other (dev mode only)."
        )
        key, source = jwt.generate_private_key(), "generated"
    kid = thumbprint(jwt.public_jwk(key, "-"))
    log.info("signing key %s (%s)", kid, source)
    return SigningKey(key, kid, source)


async def app_signing_key(request: Request) -> SigningKey:
    """The key `build_app` loaded (as a FastAPI dependency: `key: CurrentSigningKey`)."""
    key: SigningKey = app_state(request).signing_key
    return key


CurrentSigningKey = Annotated[SigningKey, Depends(app_signing_key)]
