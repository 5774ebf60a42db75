"""OpenAPI documents list the error answers the services really give, with the shop's error body."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from services import topology
from services.kit import ApiError, TokenSettings, create_app
from services.kit.jwt import Principal
from services.kit.security import current_user, require_group, require_service
from services.kit.testing import TokenFactory, undocumented_errors


class Body(BaseModel):
    name: str


def demo(declare_404: bool) -> FastAPI:
    router = APIRouter()
    responses: dict[int | str, dict[str, Any]] = (
        {404: {"description": "thing_not_found"}} if declare_404 else {}
    )

    @router.post("/things/{thing_id}", responses=responses)
    async def update(thing_id: str, body: Body, user: Principal = Depends(current_user)) -> dict[str, str]:
        raise ApiError(404, "thing_not_found", "no such thing")

    @router.get("/admin")
    async def admin(user: Principal = Depends(require_group("admin"))) -> dict[str, str]:
        return {}

    @router.post("/refunds")
    async def refunds(caller: Principal = Depends(require_service("order"))) -> dict[str, str]:
        return {}

    return create_app(TokenSettings(service_name="demo"), title="demo", routers=[router])


def test_token_checks_bodies_and_parameters_document_their_answers() -> None:
    document = demo(declare_404=True).openapi()
    update = document["paths"]["/things/{thing_id}"]["post"]["responses"]
    assert {"400", "401", "403", "404", "413", "422"} <= set(update)
    assert update["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert "HTTPValidationError" not in document["components"]["schemas"]  # not FastAPI's shape: ours
    assert document["components"]["schemas"]["ErrorBody"]["properties"]["error"]
    assert {"401", "403"} <= set(document["paths"]["/admin"]["get"]["responses"])
    assert {"401", "403"} <= set(document["paths"]["/refunds"]["post"]["responses"])


@pytest.mark.parametrize("declared", [False, True], ids=["planted-omission", "declared"])
def test_an_answer_missing_from_the_document_is_reported(declared: bool) -> None:
    app = demo(declare_404=declared)
    tokens = TokenFactory().trust_in(app)
    with TestClient(app) as client:
        assert client.post("/things/x", json={"name": "a"}, headers=tokens.headers()).status_code == 404
        assert client.post("/things/x", json={"name": "a"}).status_code == 401
        assert client.post("/things/x", json={}, headers=tokens.headers()).status_code == 422
        assert client.get("/admin", headers=tokens.headers()).status_code == 403
    expected = (
        [] if declared else ["demo: POST /things/{thing_id} answered 404; its OpenAPI document omits it"]
    )
    assert undocumented_errors(app) == expected


@pytest.mark.parametrize("service", topology.SERVICES)
def test_every_service_documents_its_auth_and_validation_answers(service: str) -> None:
    app: FastAPI = importlib.import_module(f"services.{service}.app").build_app()
    document = app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            json_body = "application/json" in operation.get("requestBody", {}).get("content", {})
            if operation.get("parameters") or json_body:  # (auth's form-encoded token endpoint answers 400)
                assert "422" in codes, (service, method, path)
            for code in codes - {"200", "201", "204"}:
                content = operation["responses"][code].get("content", {}).get("application/json", {})
                assert content.get("schema"), (service, method, path, code)
