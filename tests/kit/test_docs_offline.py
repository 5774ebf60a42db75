"""Every service's /docs (Swagger UI) and /redoc work offline: only same-origin assets, all of them served."""

from __future__ import annotations

import importlib
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from scripts.dev import SERVICES

ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Links(HTMLParser):
    """Every src and href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


def links_of(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.links


def build(service: str) -> FastAPI:
    module = importlib.import_module(f"services.{service}.app")
    app: FastAPI = module.build_app()
    return app


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_only_same_origin_assets_and_they_are_served(service: str, page: str) -> None:
    with TestClient(build(service)) as client:
        response = client.get(page)
        assert response.status_code == 200, response.text
        html = response.text
        assert "cdn." not in html and "https://" not in html and "http://" not in html, html
        # no badge fetched from validator.swagger.io
        assert "validatorUrl" not in html or '"validatorUrl": null' in html
        assets = links_of(html)
        assert any(a.endswith(".js") for a in assets)
        assert page == "/redoc" or any(a.endswith(".css") for a in assets)
        for asset in assets:
            assert asset.startswith("/") and not asset.startswith("//"), f"{asset} is not same-origin"
            served = client.get(asset)
            assert served.status_code == 200, f"{service}: {asset} answered {served.status_code}"
            kind = next(t for ext, t in ASSET_TYPES.items() if asset.endswith(ext))
            assert kind in served.headers["content-type"], (asset, served.headers["content-type"])
            assert len(served.content) > 1000, f"{asset} is nearly empty"
        assert client.get("/openapi.json").status_code == 200


def test_swagger_ui_bundle_is_the_real_thing() -> None:
    """The served bundle is Swagger UI 5 (what FastAPI's CDN default would have loaded), not a stub."""
    with TestClient(build("payment")) as client:
        bundle = client.get("/docs-assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert "SwaggerUIBundle" in bundle.text and len(bundle.content) > 1_000_000
