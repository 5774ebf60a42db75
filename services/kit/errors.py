"""Uniform JSON error bodies: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from pymongo.errors import ConnectionFailure, ExecutionTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("kit.errors")

_CODES = {
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
}


class ErrorDetail(BaseModel):
    code: str = Field(examples=["order_not_found"], description="machine-readable, stable")
    message: str = Field(examples=["no such order"], description="for people")
    details: Any = Field(None, description="what the code needs, e.g. the fields of a 422 or an order_id")


class ErrorBody(BaseModel):
    """Every error answer of the shop (the kit's handlers write it)."""

    error: ErrorDetail


ERRORS_ATTRIBUTE = "documented_errors"
Fn = TypeVar("Fn", bound=Callable[..., Any])


def documents(errors: dict[int, str]) -> Callable[[Fn], Fn]:
    """Mark a FastAPI dependency with the error answers it gives ({status: codes}): every route that
    depends on it lists them in its OpenAPI document (see `document_errors`)."""

    def mark(dependency: Fn) -> Fn:
        setattr(dependency, ERRORS_ATTRIBUTE, dict(errors))
        return dependency

    return mark


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def document_errors(app: FastAPI) -> None:
    """Put the error answers each route really gives into its OpenAPI responses, with the `ErrorBody` schema:

    - what its dependencies declare with `documents` (401/403 of the token checks, ...);
    - 422 (our body, not FastAPI's `HTTPValidationError`) when it has parameters or a body; with a JSON body
      also 400 `malformed_json` and 413 `payload_too_large` (the kit's middleware);
    - the route's own `responses=` (404, 409, ...), given the `ErrorBody` schema when they name no model.
    Idempotent; `create_app` runs it when the document is first built."""
    for route in iter_route_contexts(app.routes):  # included routers too (FastAPI builds them lazily)
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        found: dict[int, str] = {}
        for dependency in _dependencies(route.dependant):
            found.update(getattr(dependency.call, ERRORS_ATTRIBUTE, {}))
        dependant = route.dependant
        if route.body_field is not None:
            found.setdefault(400, "malformed_json: the body is not JSON")
            found.setdefault(413, "payload_too_large: the body exceeds the service's limit")
        if route.body_field is not None or any(
            (dependant.path_params, dependant.query_params, dependant.header_params)
        ):
            found.setdefault(422, "validation_error: details name each field and say why")
        declared = {int(status) for status in route.responses if str(status).isdigit()}
        for status, text in found.items():
            if status not in declared:
                route.responses[status] = {"description": text}
        for code, spec in route.responses.items():
            if str(code).isdigit() and int(code) >= 400 and isinstance(spec, dict) and "model" not in spec:
                spec.setdefault("content", {"application/json": {"schema": {"$ref": ERROR_BODY_REF}}})


ERROR_BODY_REF = "#/components/schemas/ErrorBody"


def add_error_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """The `ErrorBody` schema (and what it refers to) in an OpenAPI document's components."""
    schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["ErrorBody"] = schema
    return document


class ApiError(Exception):
    """Raise from a handler to answer with a JSON error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each failed field: where (`loc`, as text), what is wrong (`msg`) and pydantic's error `type`."""
    return [
        {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]} for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(400, "malformed_json", "request body is not valid JSON", details)
        return error_response(422, "validation_error", "request did not validate", details)

    @app.exception_handler(ConnectionFailure)
    @app.exception_handler(ExecutionTimeout)
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # MongoDB unreachable or too slow: the dependency's fault, so 503 (retryable), not a 500.
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(503, "database_unavailable", "the database is unavailable")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error")
