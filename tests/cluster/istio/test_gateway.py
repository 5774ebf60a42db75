"""Lab gateway: the shop on http://localhost and https://localhost through Istio's ingress gateway.

make lab MESH=istio LAB=gateway && make verify MESH=istio LAB=gateway
"""

from __future__ import annotations

import socket
import ssl
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from kubernetes.client.exceptions import ApiException


def test_http_reaches_the_frontend_through_the_gateway(shop_url: str) -> None:
    r = httpx.get(f"{shop_url}/healthz", timeout=10)
    assert r.status_code == 200
    assert r.headers["x-served-by"].startswith("frontend/")
    # answered through the gateway's Envoy (server name istio-envoy, upstream timing header)
    assert r.headers.get("server") == "istio-envoy" or "x-envoy-upstream-service-time" in r.headers


def test_https_uses_the_generated_certificate(shop_url: str, core_v1: Any, namespace: str) -> None:
    try:
        core_v1.read_namespaced_secret("ecommerce-tls-secret", "istio-system")
    except ApiException:
        pytest.skip("no TLS secret in istio-system: make lab MESH=istio LAB=gateway")
    host = urlparse(shop_url).hostname or "localhost"
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection((host, 443), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der and b"ecommerce.example.com" in der
    r = httpx.get(f"https://{host}/healthz", verify=False, timeout=10)
    assert r.status_code == 200 and r.headers["x-served-by"].startswith("frontend/")
    # the lesson's mistake would be a secret in the app namespace: the gateway cannot read it there
    with pytest.raises(ApiException) as missing:
        core_v1.read_namespaced_secret("ecommerce-tls-secret", namespace)
    assert missing.value.status == 404, "not there (a 403 would only mean we may not look)"
