"""The shop's error answers (services/kit/errors.py), exactly as a caller reads them: the JSON body of every
4xx/5xx a kit app gives, the headers that come with it, and how the OpenAPI document describes them."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from pymongo.errors import ExecutionTimeout, ServerSelectionTimeoutError
from starlette.exceptions import HTTPException

from services.kit import TokenSettings, create_app
from services.kit.errors import add_error_schemas
from services.kit.testing import TokenFactory

# What a framework-level HTTP error (routing, a dependency raising HTTPException) is called in the body.
FRAMEWORK_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
    418: "error",  # a status the shop never names
}


def failing_app() -> FastAPI:
    router = APIRouter()

    @router.get("/http/{status}")
    async def http_error(status: int, detail: str | None = None, structured: bool = False) -> None:
        raise HTTPException(status, {"why": detail} if structured else detail, headers={"Retry-After": "7"})

    @router.get("/database/{kind}")
    async def database_down(kind: str) -> None:
        raise ServerSelectionTimeoutError("no primary") if kind == "down" else ExecutionTimeout("too slow")

    return create_app(TokenSettings(service_name="demo"), title="demo", routers=[router])


@pytest.fixture
def failing() -> TestClient:
    return TestClient(failing_app(), raise_server_exceptions=False)


@pytest.mark.parametrize(("status", "code"), FRAMEWORK_CODES.items())
def test_a_framework_error_is_named_by_its_status_and_keeps_its_headers(
    failing: TestClient, status: int, code: str
) -> None:
    unnamed = failing.get(f"/http/{status}")
    assert unnamed.status_code == status
    assert unnamed.json() == {"error": {"code": code, "message": HTTPStatus(status).phrase}}
    assert unnamed.headers["retry-after"] == "7"
    named = failing.get(f"/http/{status}", params={"detail": "say why"})
    assert named.json() == {"error": {"code": code, "message": "say why"}}
    # A detail that is not text is not shown as the message: the code in words is.
    structured = failing.get(f"/http/{status}", params={"detail": "x", "structured": True})
    assert structured.json() == {"error": {"code": code, "message": code.replace("_", " ")}}


def test_routing_errors_are_the_shops_json_with_their_headers(client: TestClient) -> None:
    wrong_method = client.get("/items/1")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": {"code": "method_not_allowed", "message": "Method Not Allowed"}}
    assert wrong_method.headers["allow"] == "POST"


def test_a_refused_token_says_how_to_authenticate(client: TestClient, tokens: TokenFactory) -> None:
    expired = client.post(
        "/items/1", json={"name": "x", "quantity": 1}, headers=tokens.headers(expires_in=-5)
    )
    assert expired.status_code == 401
    assert expired.json() == {"error": {"code": "unauthorized", "message": "token expired"}}
    assert expired.headers["www-authenticate"] == "Bearer"


def test_a_validation_error_names_each_field_what_is_wrong_and_the_kind(
    client: TestClient, tokens: TokenFactory
) -> None:
    answer = client.post("/items/1", json={"quantity": "many"}, headers=tokens.headers())
    assert answer.status_code == 422
    assert answer.json() == {
        "error": {
            "code": "validation_error",
            "message": "request did not validate",
            "details": [
                {"loc": ["body", "name"], "msg": "Field required", "type": "missing"},
                {
                    "loc": ["body", "quantity"],
                    "msg": "Input should be a valid integer, unable to parse string as an integer",
                    "type": "int_parsing",
                },
            ],
        }
    }


def test_a_body_that_is_not_json_is_400_with_where_it_broke(client: TestClient, tokens: TokenFactory) -> None:
    answer = client.post(
        "/items/1", content=b"{nope", headers={**tokens.headers(), "content-type": "application/json"}
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["message"]) == ("malformed_json", "request body is not valid JSON")
    assert [(d["loc"], d["type"]) for d in error["details"]] == [(["body", "1"], "json_invalid")]


@pytest.mark.parametrize("kind", ["down", "slow"])
def test_a_database_that_is_down_or_too_slow_is_a_retryable_503(failing: TestClient, kind: str) -> None:
    answer = failing.get(f"/database/{kind}")
    assert answer.status_code == 503
    assert answer.json() == {
        "error": {"code": "database_unavailable", "message": "the database is unavailable"}
    }


def test_a_bug_is_a_500_that_tells_nothing_of_the_bug(client: TestClient) -> None:
    bug = client.get("/boom")
    assert bug.status_code == 500
    assert bug.json() == {"error": {"code": "internal_error", "message": "internal error"}}


def test_the_document_says_what_each_kit_answer_means(client: TestClient) -> None:
    responses = client.get("/openapi.json").json()["paths"]["/items/{item_id}"]["post"]["responses"]
    described = {status: answer["description"] for status, answer in responses.items()}
    assert described["400"] == "malformed_json: the body is not JSON"
    assert described["413"] == "payload_too_large: the body exceeds the service's limit"
    assert described["422"] == "validation_error: details name each field and say why"


class Conflict(BaseModel):
    """A route's own error model (not the shop's ErrorBody)."""

    holder: str


def documented_app() -> FastAPI:
    router = APIRouter()

    @router.post(
        "/things/{thing_id}",
        responses={
            422: {"description": "the thing's own words for a 422"},
            409: {"model": Conflict, "description": "somebody holds it"},
            404: {"description": "thing_not_found"},
            202: {"description": "accepted for later"},
        },
    )
    async def update(thing_id: str, body: Conflict) -> dict[str, str]:
        return {}

    return create_app(TokenSettings(service_name="demo"), title="demo", routers=[router])


def test_a_routes_own_error_documentation_wins_and_keeps_its_model() -> None:
    document = documented_app().openapi()
    responses = document["paths"]["/things/{thing_id}"]["post"]["responses"]

    def schema(status: str) -> object:
        return responses[status].get("content", {}).get("application/json", {}).get("schema")

    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    assert responses["422"]["description"] == "the thing's own words for a 422"  # not the kit's text
    assert schema("422") == error_body
    assert (responses["404"]["description"], schema("404")) == ("thing_not_found", error_body)
    assert schema("409") == {"$ref": "#/components/schemas/Conflict"}  # its own model, not ErrorBody
    assert schema("202") != error_body  # not an error
    assert responses["400"]["description"] == "malformed_json: the body is not JSON"


def test_the_error_body_schema_is_complete_in_any_document() -> None:
    document = add_error_schemas({})
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    assert set(schemas["ErrorDetail"]["properties"]) == {"code", "message", "details"}
    assert schemas["ErrorDetail"]["required"] == ["code", "message"]
    kept = add_error_schemas({"components": {"schemas": {"Item": {"type": "object"}}}})
    assert set(kept["components"]["schemas"]) == {"Item", "ErrorBody", "ErrorDetail"}
