"""What every console page shares: templates, the session behind a page, the checked form post,
logging in and out.

No front-end build: Jinja templates and a few lines of script on the call
page (the transcript follows the player; a click seeks). Pages use the same
role rules and audit log as the API: a search from the console is audited
like one from a script, and the player pulls audio from the audited API.
The pages themselves are in `api.console.qa` (QA staff and auditors),
`api.console.supervisors`, `api.console.agents` and `api.console.admin`.
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from api.accounts.models import Role, User, role_word
from api.accounts.sessions import (
    COOKIE,
    LIFETIME,
    REFUSED,
    LoginRefused,
    log_in,
    log_out,
    session_user,
)
from api.audit.chain import record
from api.console.labels import label
from api.i18n import COOKIE as LANGUAGE_COOKIE
from api.i18n import (
    LANGUAGES,
    N_,
    _,
    current,
    gettext,
    known,
    money,
    ngettext,
    number,
    translate,
    use,
    when,
)
from api.i18n import day as format_day
from api.web.headers import nonce_of
from api.web.params import has_control
from api.web.services import services_of

router = APIRouter(include_in_schema=False)


def _environment() -> Environment:
    """Jinja with gettext: `{% trans %}` and `_()` in the request's language, and its formats."""
    folder = str(resources.files("api.console").joinpath("templates"))
    env = Environment(
        loader=FileSystemLoader(folder), autoescape=True, extensions=["jinja2.ext.i18n"]
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(when=when, day=format_day, number=number, money=money)
    env.globals["label"] = label
    return env


templates = Jinja2Templates(env=_environment())

READERS = (Role.QA, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR)
EXPORTERS = (Role.SUPERVISOR, Role.ADMIN)  # download with a reason, legal hold
NAME_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"  # an agent's or a client's name
FOREIGN_FORM = N_("use the console's own form (the form's token does not match)")


def _who(request: Request) -> tuple[User, str] | None:
    """(user, CSRF token) of the browser's live session."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    services = services_of(request)
    with services.sessions() as session:
        found = session_user(session, token, services.clock())
        if found is None:
            return None
        user, web = found
        return user, web.csrf


class LoginNeeded(Exception):
    """A console page asked for without a live session; `install` sends it to the login page."""


def install(app: FastAPI) -> None:
    """Logging in and out, and the console's answer to a request without a session: log in first.

    The pages' own routers (`qa`, `supervisors`, `agents`, `admin`) are included beside it.
    """
    app.include_router(router)

    async def login_first(request: Request, _: Exception) -> Response:
        return to_login(request)

    app.add_exception_handler(LoginNeeded, login_first)


def page_user(request: Request, *roles: Role) -> tuple[User, str]:
    """(user, CSRF token) of the session behind a page one of `roles` may open."""
    who = _who(request)
    if who is None:
        raise LoginNeeded
    speak_as(request, who[0])
    if who[0].role not in roles:
        role = role_name(who[0].role)
        raise HTTPException(403, translate("the %(role)s role may not open this page", role=role))
    return who


def speak_as(request: Request, user: User) -> None:
    """The page speaks the person's chosen language, when they chose one."""
    if known(user.language):
        use(user.language or "")
        request.state.language = current()


role_name = role_word


def form_user(
    request: Request, csrf: str, *roles: Role, refusal: str = FOREIGN_FORM
) -> tuple[User, str]:
    """(user, CSRF token) behind a form post, as `page_user`; the post must carry the token.

    Every console form holds the session's token in its `csrf` field; a post
    without it (a page on another site submitting a form in the user's
    browser) is refused with 403 and `refusal`, and changes nothing.
    """
    user, token = page_user(request, *roles)
    if not hmac.compare_digest(csrf.encode("utf-8", "surrogatepass"), token.encode()):
        raise HTTPException(403, gettext(refusal))
    return user, token


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("csp_nonce", nonce_of(request))
    context.setdefault("language", current())
    context.setdefault("languages", LANGUAGES)
    query = request.url.query
    context.setdefault("here", request.url.path + (f"?{query}" if query else ""))
    context.setdefault("role_name", role_name)
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"  # transcripts are personal data
    return response


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return render(
        request,
        "login.html",
        title=_("Log in"),
        user=None,
        error=None,
        username="",
        no_admin=not _has_admin(request),
    )


def _has_admin(request: Request) -> bool:
    """Whether any admin account exists; none on a fresh install, so the page says how."""
    try:
        with services_of(request).sessions() as session:
            found = session.scalar(select(User.username).where(User.role == Role.ADMIN).limit(1))
    except SQLAlchemyError:
        return True  # the database is away: say nothing rather than something wrong
    return found is not None


def source_of(request: Request) -> str:
    """Where a request comes from, as the login limits count it: the peer's address, or the
    client a trusted proxy names (`api.web.proxies.ForwardedFor` has set it already)."""
    return request.client.host if request.client else "unknown"


def _printable_name(username: str) -> str:
    """The typed name as the audit log may keep it: control characters escaped."""
    if not has_control(username):
        return username[:64] or "-"
    return username.encode("unicode_escape").decode("ascii")[:64]


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Log in. Every refusal reads the same and takes as long; a wait says until when."""
    services = services_of(request)
    now = services.clock()
    source = source_of(request)
    with services.sessions() as session:
        try:
            user, token = log_in(
                session,
                _printable_name(username),
                password,
                now,
                services.login_limits,
                source=source,
                code=code,
                keys=services.keys,
                require_totp=services.require_totp,
            )
        except LoginRefused as exc:
            detail = {"locked": exc.locked, "why": exc.why, "source": source[:64]}
            record(
                session, _printable_name(username), "login-failed", "console", now, detail=detail
            )
            refused = {
                "title": _("Log in"),
                "user": None,
                "error": refusal_text(exc),
                "username": "" if has_control(username) else username[:64],
            }
            return render(request, "login.html", status=429 if exc.locked else 401, **refused)
        record(session, user.username, "login", "console", now, detail={"source": source[:64]})
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=64)] = "") -> Response:
    try:  # a forged request (not our form) changes nothing
        refusal = N_("log out from the console's own button")
        user, _token = form_user(request, csrf, *Role, refusal=refusal)
    except LoginNeeded:
        pass  # no live session: nothing to end
    else:
        services = services_of(request)
        with services.sessions() as session:
            log_out(session, request.cookies.get(COOKIE, ""), services.clock())
            record(session, user.username, "logout", "console", services.clock())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home(request: Request) -> Response:
    who = _who(request)
    if who is None:
        return to_login(request)
    return RedirectResponse("/agent" if who[0].role is Role.AGENT else "/search", status_code=303)


def refusal_text(exc: LoginRefused) -> str:
    """A login refusal in the reader's language: the same words for every cause, and the wait."""
    if exc.locked and exc.until is not None:
        until = f"{exc.until:%H:%M:%S}"
        return translate("too many failed logins: try again after %(until)s UTC", until=until)
    return gettext(REFUSED)


@router.post("/language")
def choose_language(
    request: Request,
    language: Annotated[str, Form(pattern=r"^(zh_CN|en)$")],
    next_page: Annotated[str, Form(alias="next", max_length=500)] = "/",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The console's language switch: kept in a cookie, and in the profile of who is logged in.

    The profile follows a person to every browser; the cookie serves the
    login page. Only the console's own form changes a profile (its token).
    """
    who = _who(request)
    if who is not None and hmac.compare_digest(csrf.encode(), who[1].encode()):
        services = services_of(request)
        with services.sessions() as session:
            user = session.get(User, who[0].id)
            if user is not None and user.language != language:
                before = user.language or "-"
                user.language = language
                detail = {"from": before, "to": language}
                now = services.clock()
                record(session, user.username, "language-changed", language, now, detail=detail)
    back = next_page if next_page.startswith("/") and not next_page.startswith("//") else "/"
    response = RedirectResponse(back, status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response
