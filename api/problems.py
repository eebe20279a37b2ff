"""Errors as RFC 9457 problem details (application/problem+json), with clear messages."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from recording.errors import RecordingError
from recording.retention import RetentionError
from recording.store import RecordingNotFound, RecordingUnavailable
from transcribe.search import SearchError

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


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid input"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        return problem(422, f"{where}: {first.get('msg', 'invalid')}".strip(": "))

    @app.exception_handler(SearchError)
    async def _search(_: Request, exc: SearchError) -> JSONResponse:
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
