"""Errors as RFC 9457 problem details (application/problem+json), with clear messages."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.i18n import N_, current, gettext, use
from recording.errors import RecordingError
from recording.retention import RetentionError
from recording.store import RecordingNotFound, RecordingUnavailable
from transcribe.search import SearchError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
#: Each status's stable machine `code` and its human `title` (translated as it is sent).
_KINDS = {
    400: ("bad_request", N_("Bad request")),
    401: ("not_authenticated", N_("Not authenticated")),
    403: ("forbidden", N_("Forbidden")),
    404: ("not_found", N_("Not found")),
    405: ("method_not_allowed", N_("Method not allowed")),
    409: ("conflict", N_("Conflict")),
    413: ("too_large", N_("Too large")),
    415: ("unsupported_media_type", N_("Unsupported media type")),
    416: ("range_not_satisfiable", N_("Range not satisfiable")),
    422: ("invalid_input", N_("Invalid input")),
    429: ("too_many_requests", N_("Too many requests")),
    503: ("unavailable", N_("Unavailable")),
}

# The details the API sends, as the catalogue holds them: a detail is sent in the reader's
# language when it is one of these, whole or with its parts (ids, names, numbers) matched
# by the pattern beside it. A detail matching none goes as it is, in English: the code and
# the title are always there to act on. Codes and values inside stay as they were sent.
_WHOLE = (
    N_("this auditor account is not assigned to a client"),
    N_("an auditor sees only the calls of their own client"),
    N_("an agent sees only their own calls"),
    N_("an agent places calls from their own softphone only"),
    N_("agents may not export call lists"),
    N_("agents may not export QA results"),
    N_("an agent sees only their own scores"),
    N_("only supervisors and admins download recordings; play it instead"),
    N_("the number key is not configured, so numbers cannot be found"),
    N_("the number key is not configured, so debtors cannot be stored"),
    N_("the number key is not configured, so debtors cannot be shown"),
    N_("`from` and `to` must be dates between years 1 and 9999"),
    N_("`to` must be later than `from`"),
    N_("`until` must be a date between years 1 and 9999"),
    N_("a client is given only with the debtor_id it qualifies"),
    N_("send the file in a form field named 'file'"),
    N_("send Authorization: Bearer <token>"),
    N_("the token is unknown, revoked or its account disabled"),
    N_("use the console's own form (the form's token does not match)"),
    N_("log out from the console's own button"),
    N_("change a legal hold from the console's own form"),
    N_("review from the console's own form"),
    N_("file requests from the console's own form"),
    N_("answer requests from the console's own form"),
    N_("look numbers up from the console's own form"),
    N_("place calls from the console's own button"),
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("name the file .csv, .xlsx or .json, or pass ?format=csv|xlsx|json"),
    N_(
        "send text/csv, an .xlsx workbook, application/json or a multipart form with a 'file' field"
    ),
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), message)
    for pattern, message in (
        (r"^no recording (?P<id>\S+)$", N_("no recording %(id)s")),
        (r"^no debtor (?P<id>\S+)$", N_("no debtor %(id)s")),
        (r"^no number (?P<id>\S+)$", N_("no number %(id)s")),
        (r"^no flag (?P<id>\S+)$", N_("no flag %(id)s")),
        (r"^no call request (?P<id>\S+)$", N_("no call request %(id)s")),
        (r"^no call outcome (?P<id>\S+)$", N_("no call outcome %(id)s")),
        (r"^no retrieval request (?P<id>\S+)$", N_("no retrieval request %(id)s")),
        (r"^no call (?P<id>\S+) in progress$", N_("no call %(id)s in progress")),
        (
            r"^request (?P<id>\S+) was answered by (?P<who>\S+)$",
            N_("request %(id)s was answered by %(who)s"),
        ),
        (
            r"^call (?P<id>\S+) has not been scored yet$",
            N_("call %(id)s has not been scored yet"),
        ),
        (
            r"^flag (?P<id>\S+) was reviewed by someone else meanwhile$",
            N_("flag %(id)s was reviewed by someone else meanwhile"),
        ),
        (
            r"^the recording of call (?P<id>\S+) is already paused$",
            N_("the recording of call %(id)s is already paused"),
        ),
        (
            r"^the recording of call (?P<id>\S+) is not paused$",
            N_("the recording of call %(id)s is not paused"),
        ),
        (r"^the (?P<role>\S+) role may not do this$", N_("the %(role)s role may not do this")),
        (
            r"^the (?P<role>\S+) role may not open this page$",
            N_("the %(role)s role may not open this page"),
        ),
        (
            r"^no sample has been drawn for (?P<week>\S+)$",
            N_("no sample has been drawn for %(week)s"),
        ),
        (r"^limit must be 1-(?P<n>\d+)$", N_("limit must be 1-%(n)s")),
        (
            r"^the upload is larger than (?P<n>\d+) MB; split it$",
            N_("the upload is larger than %(n)s MB; split it"),
        ),
        (
            r"^week: (?P<year>\S+) has no week (?P<week>\S+)$",
            N_("week: %(year)s has no week %(week)s"),
        ),
        (
            r"^no debtor (?P<id>\S+): send the debtor record first$",
            N_("no debtor %(id)s: send the debtor record first"),
        ),
        (
            r"^debtor id (?P<id>\S+) is used by several clients; add client$",
            N_("debtor id %(id)s is used by several clients; add client"),
        ),
        (
            r"^(?P<agent>\S+)'s softphone is not registered: it cannot be rung$",
            N_("%(agent)s's softphone is not registered: it cannot be rung"),
        ),
        (
            r"^the audit anchors cannot be read from (?P<where>.+): (?P<error>\w+)$",
            N_("the audit anchors cannot be read from %(where)s: %(error)s"),
        ),
        (
            r"^the sample for (?P<week>\S+) was drawn by (?P<who>\S+) with seed (?P<seed>\S+); "
            r"it is not drawn twice$",
            N_(
                "the sample for %(week)s was drawn by %(who)s with seed %(seed)s; "
                "it is not drawn twice"
            ),
        ),
        (
            r"^recording (?P<id>\S+) is not of (?P<client>\S+), whose auditor asked$",
            N_("recording %(id)s is not of %(client)s, whose auditor asked"),
        ),
        (
            r"^offset must be 0-(?P<n>\d+); narrow the search with filters$",
            N_("offset must be 0-%(n)s; narrow the search with filters"),
        ),
    )
)


def localised(detail: str) -> str:
    """`detail` in the request's language when the catalogue knows it; else as it is."""
    if current() == "en":
        return detail
    text = gettext(detail)
    if text != detail:
        return text
    for pattern, message in _PATTERNS:
        found = pattern.match(detail)
        if found is not None:
            return gettext(message) % found.groupdict()
    return detail


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, code: str | None = None
) -> JSONResponse:
    """The problem body: a stable `code` for programs, `title` and `detail` for people."""
    kind, title = _KINDS.get(status, ("error", N_("Error")))
    body = {
        "type": "about:blank",
        "title": gettext(title),
        "status": status,
        "detail": localised(detail),
        "code": code or kind,
    }
    headers = dict(headers or {})
    headers.setdefault("Content-Language", current().replace("_", "-"))
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
        "code": {
            "type": "string",
            "description": "A stable machine code (not_found, invalid_input, ...): the same in "
            "every language, while `title` and `detail` follow Accept-Language.",
        },
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


# Pydantic's messages by error type, for a reader of Chinese; the English ones stay pydantic's.
_INVALID = {
    "missing": N_("a value is required"),
    "string_too_short": N_("too short: at least %(min_length)s characters"),
    "string_too_long": N_("too long: at most %(max_length)s characters"),
    "string_pattern_mismatch": N_("not in the expected form"),
    "int_parsing": N_("must be a whole number"),
    "float_parsing": N_("must be a number"),
    "bool_parsing": N_("must be true or false"),
    "greater_than_equal": N_("must be at least %(ge)s"),
    "less_than_equal": N_("must be at most %(le)s"),
    "greater_than": N_("must be more than %(gt)s"),
    "less_than": N_("must be less than %(lt)s"),
    "datetime_parsing": N_("must be a date and time (ISO 8601)"),
    "datetime_from_date_parsing": N_("must be a date and time (ISO 8601)"),
    "timezone_aware": N_("must carry a time zone"),
    "date_parsing": N_("must be a date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": N_("must be a date (YYYY-MM-DD)"),
    "enum": N_("must be one of %(expected)s"),
    "literal_error": N_("must be one of %(expected)s"),
    "json_invalid": N_("is not valid JSON"),
    "extra_forbidden": N_("is not a field this takes"),
}


def _invalid_text(error: Any) -> str:
    """One validation error's message: pydantic's in English, the catalogue's otherwise."""
    message = str(error.get("msg", "invalid"))
    found = _INVALID.get(str(error.get("type", "")))
    if current() == "en" or found is None:
        return localised(message)
    context = {k: str(v) for k, v in (error.get("ctx") or {}).items()}
    try:
        return gettext(found) % context
    except (KeyError, ValueError, TypeError):
        return message


def install(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_problems(build())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        use(getattr(request.state, "language", current()))  # a console user's profile
        return problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid input"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        detail = f"{where}: {first.get('msg', 'invalid')}".strip(": ")
        shown = f"{where}: {_invalid_text(first)}".strip(": ")
        # what was wrong and where, never the value: it may be a phone number or a name
        log.warning(
            "request refused: invalid input",
            extra={"path": request.url.path, "method": request.method, "problem": detail},
        )
        return problem(422, shown)

    @app.exception_handler(SearchError)
    async def _search(request: Request, exc: SearchError) -> JSONResponse:
        log.warning("search refused", extra={"path": request.url.path, "problem": str(exc)})
        return problem(400, str(exc), code="search_refused")

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
