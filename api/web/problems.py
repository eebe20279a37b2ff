"""Errors as RFC 9457 problem details (application/problem+json), with clear messages."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from recording.errors import RecordingError
from recording.retention import RetentionError
from recording.store import RecordingNotFound, RecordingUnavailable
from transcribe.search import SearchError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    422: "Invalid input",
    503: "Unavailable",
}


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


#: The body of every error the API returns, as its OpenAPI document describes it.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem: `detail` says in plain words what was wrong.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}
_PROBLEM_RESPONSE = {"$ref": "#/components/responses/Problem"}


def _document_problems(schema: dict[str, Any]) -> None:
    """Say in the OpenAPI document what the handlers below really send.

    FastAPI describes a 422 as its own `HTTPValidationError` JSON, but every
    error leaves here as problem+json; a client generated from the document
    must be able to read each one, so each operation lists 422 and a default
    response as a Problem.
    """
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components.setdefault("responses", {})["Problem"] = {
        "description": "The request could not be served; `detail` says why.",
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _PROBLEM_RESPONSE
            responses.setdefault("default", _PROBLEM_RESPONSE)
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)


def install(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_problems(build())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid input"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        detail = f"{where}: {first.get('msg', 'invalid')}".strip(": ")
        # what was wrong and where, never the value: it may be a phone number or a name
        log.warning(
            "request refused: invalid input",
            extra={"path": request.url.path, "method": request.method, "problem": detail},
        )
        return problem(422, detail)

    @app.exception_handler(SearchError)
    async def _search(request: Request, exc: SearchError) -> JSONResponse:
        log.warning("search refused", extra={"path": request.url.path, "problem": str(exc)})
        return problem(400, str(exc))

    @app.exception_handler(RecordingNotFound)
    async def _missing(_: Request, exc: RecordingNotFound) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(RecordingUnavailable)
    async def _unavailable(_: Request, exc: RecordingUnavailable) -> JSONResponse:
        return problem(503, f"{exc} - {exc.hint}")

    @app.exception_handler(RetentionError)
    async def _retention(_: Request, exc: RetentionError) -> JSONResponse:
        return problem(409, f"{exc} - {exc.hint}")

    @app.exception_handler(RecordingError)
    async def _recording(_: Request, exc: RecordingError) -> JSONResponse:
        return problem(503, str(exc))
