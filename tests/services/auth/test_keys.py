"""auth signing key: from a file or env in a cluster, generated (with a warning) in dev, kid per RFC 7638."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from services.auth.app import build_app
from services.auth.keys import SigningKeyError, thumbprint
from services.kit.jwt import JwksVerifier, generate_private_key
from tests.services.auth.helpers import PASSWORD, auth_settings


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def jwks_and_token(app: Any) -> tuple[dict[str, Any], str]:
    with TestClient(app) as client:
        client.post("/auth/register", json={"email": "k@example.com", "password": PASSWORD, "name": "K"})
        token = client.post("/auth/login", json={"email": "k@example.com", "password": PASSWORD}).json()
        return client.get("/.well-known/jwks.json").json(), token["access_token"]


def test_thumbprint_matches_the_rfc_7638_example() -> None:
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJE"
            "CPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q"
            "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
            "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        ),
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_a_key_file_gives_a_stable_kid_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    key_file = tmp_path / "jwt.pem"
    key_file.write_bytes(pem(generate_private_key()))
    jwks_before, token = jwks_and_token(build_app(auth_settings(jwt_private_key_file=str(key_file))))
    jwks_after, _ = jwks_and_token(build_app(auth_settings(jwt_private_key_file=str(key_file))))
    assert jwks_before == jwks_after
    (jwk,) = jwks_after["keys"]
    assert jwk["kid"] == thumbprint(jwk)
    verifier = JwksVerifier("http://unused.invalid", "shop-auth", "shop")
    verifier.trust(jwks_after)
    principal = asyncio.run(verifier.verify(token))
    assert principal.email == "k@example.com"


def test_the_key_can_come_from_env_text() -> None:
    key = generate_private_key()
    app = build_app(auth_settings(jwt_private_key=pem(key).decode()))
    with TestClient(app) as client:
        served = client.get("/.well-known/jwks.json").json()["keys"][0]
    public = key.public_key().public_numbers()
    assert served["e"] == "AQAB"
    assert app.state.signing_key.source == "env"
    assert app.state.signing_key.private_key.public_key().public_numbers() == public


def test_without_a_key_one_is_generated_with_a_loud_warning(capsys: pytest.CaptureFixture[str]) -> None:
    first = build_app(auth_settings())
    second = build_app(auth_settings())
    out = capsys.readouterr().out
    assert "generated a throw-away signing key" in out
    assert '"level": "warning"' in out
    assert first.state.signing_key.source == "generated"
    assert first.state.signing_key.kid != second.state.signing_key.kid


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        (b"not a key", "not an unencrypted PEM private key"),
        ("ec", "must be an RSA key"),
        ("small", "1024-bit RSA key"),
    ],
)
def test_an_unusable_key_stops_the_start_with_the_reason(tmp_path: Path, content: Any, message: str) -> None:
    key_file = tmp_path / "jwt.pem"
    if content == "ec":
        content = pem(ec.generate_private_key(ec.SECP256R1()))
    elif content == "small":
        content = pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    if content is not None:
        key_file.write_bytes(content)
    with pytest.raises(SigningKeyError, match=message) as caught:
        build_app(auth_settings(jwt_private_key_file=str(key_file)))
    assert "JWT_PRIVATE_KEY_FILE" in str(caught.value)
