"""The admin pages of the console: accounts, do-not-call import, policy preset, rule packs, keys,
ending a client's contract, and the audit log as a person reads it.

Admins only; every form carries the session's CSRF token, and every change
is written to the audit log with who made it. The policy preset and the
rule pack are site settings the dialer and the QA worker read before each
call and batch, so a change here applies without a restart. Admins get no
new access to audio here: playing a call stays on the audited call page.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from api.accounts import admin as accounts
from api.accounts.models import Role, User
from api.accounts.totp import provisioning_uri
from api.accounts.users import MIN_PASSWORD_LENGTH
from api.audit.actions import ACTIONS, action_description, action_label
from api.audit.chain import AuditEntry, record
from api.console.admin_rules import Change, describe_policy
from api.console.common import form_user, page_user, render
from api.errors import ApiError
from api.i18n import gettext, translate
from api.import_messages import problem, say
from api.key_rotation import key_usage
from api.recordings.contracts import ClientContract, end_contract
from api.routes.audit import visible_entries
from api.web.params import text_problem
from api.web.services import services_of
from dialer.dnc import Scope, add_entries, parse_file
from dialer.numbers import number_key
from dialer.policy import PRESETS
from dialer.sheets import Kind, SheetError
from qa_scoring import pack_store as rule_packs
from qa_scoring.errors import QaError
from recording.db.engine import as_utc
from recording.db.site_settings import (
    POLICY_PRESET,
    QA_PACK,
    SiteSetting,
    read_setting,
    write_setting,
)

router = APIRouter(include_in_schema=False, prefix="/admin")

_USERNAME = r"^[a-z0-9][a-z0-9._-]{1,63}$"
_CLIENT = r"^([A-Za-z0-9._@-]{1,64})?$"
MAX_DNC_BYTES = 32 * 1024 * 1024
SHOWN_ERRORS = 100


def _admin(request: Request) -> tuple[User, str]:
    return page_user(request, Role.ADMIN)


def _page(
    request: Request, name: str, user: User, csrf: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """An admin page; every one shows an optional message or error above its forms."""
    context.setdefault("message", None)
    context.setdefault("error", None)
    return render(request, name, status=status, user=user, csrf=csrf, **context)


@router.get("")
def admin_home(request: Request) -> Response:
    _admin(request)
    return RedirectResponse("/admin/users", status_code=303)


# --- users and roles --------------------------------------------------------------------------


def _users_page(
    request: Request, user: User, csrf: str, status: int = 200, **context: Any
) -> HTMLResponse:
    services = services_of(request)
    with services.sessions() as session:
        rows = accounts.accounts(session, services.clock())
    context.setdefault("totp", None)
    context.setdefault("form", {})
    return _page(
        request,
        "admin_users.html",
        user,
        csrf,
        status=status,
        title=gettext("Admin: users"),
        section="users",
        accounts=rows,
        roles=[r.value for r in Role],
        min_password=MIN_PASSWORD_LENGTH,
        **context,
    )


@router.get("/users")
def users_page(request: Request) -> Response:
    user, csrf = _admin(request)
    return _users_page(request, user, csrf)


@router.post("/users")
def create_account(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=200)],
    password_again: Annotated[str, Form(max_length=200)],
    client: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    user, token = form_user(request, csrf, Role.ADMIN)
    form = {"username": username, "role": role, "client": client}
    if password != password_again:
        differ = gettext("the two passwords differ; nothing was created")
        return _users_page(request, user, token, 400, form=form, error=differ)
    services = services_of(request)
    try:
        with services.sessions() as session:
            done = accounts.create(
                session,
                user.username,
                username.strip(),
                role,
                client.strip() or None,
                password,
                services.clock(),
            )
    except ApiError as exc:
        return _users_page(request, user, token, 400, form=form, error=f"{exc} - {exc.hint}")
    return _users_page(request, user, token, message=done.message)


@router.post("/users/{username}/{action}")
def change_account(
    request: Request,
    username: Annotated[str, Path(pattern=_USERNAME)],
    action: Annotated[str, Path(pattern=r"^(role|disable|enable|unlock|reset-totp)$")],
    csrf: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str | None, Form(max_length=16)] = None,
    client: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    user, token = form_user(request, csrf, Role.ADMIN)
    services = services_of(request)
    try:
        with services.sessions() as session:
            done = accounts.change(
                session,
                user.username,
                username,
                Change(action),
                services.clock(),
                services.keys,
                new_role=role,
                client=client.strip() or None,
            )
    except ApiError as exc:
        return _users_page(request, user, token, 400, error=f"{exc} - {exc.hint}")
    totp = None
    if done.totp_secret is not None:
        totp = {
            "username": username,
            "secret": done.totp_secret,
            "uri": provisioning_uri(done.totp_secret, username),
        }
    return _users_page(request, user, token, message=done.message, totp=totp)


# --- do-not-call import -----------------------------------------------------------------------


@router.get("/dnc")
def dnc_page(request: Request) -> Response:
    user, csrf = _admin(request)
    return _page(
        request,
        "admin_dnc.html",
        user,
        csrf,
        title=gettext("Admin: do-not-call"),
        section="dnc",
        result=None,
        errors=[],
        error=None,
        form={},
    )


@router.post("/dnc")
def dnc_import(
    request: Request,
    file: Annotated[UploadFile, File()],
    scope: Annotated[str, Form(pattern=r"^(global|client|debtor)$")] = "global",
    scope_id: Annotated[str, Form(max_length=64, pattern=_CLIENT)] = "",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The same file and the same all-or-nothing import as `dialguard dnc import`."""
    user, token = form_user(request, csrf, Role.ADMIN)
    services = services_of(request)
    name = (file.filename or "upload.csv")[:200]
    form = {"scope": scope, "scope_id": scope_id}

    def refused(message: str, errors: list[Any], total: int = 0) -> HTMLResponse:
        return _page(
            request,
            "admin_dnc.html",
            user,
            token,
            status=400,
            title=gettext("Admin: do-not-call"),
            section="dnc",
            result=None,
            error=message,
            errors=errors,
            total_errors=total,
            form=form,
        )

    chosen = Scope(scope)
    if (chosen is Scope.GLOBAL) != (scope_id == ""):
        return refused(
            gettext("a client or debtor list needs its id; the global list takes none"), []
        )
    data = file.file.read(MAX_DNC_BYTES + 1)
    if len(data) > MAX_DNC_BYTES:
        too_large = translate(
            "%(name)s is larger than %(mib)s MiB; split it",
            name=name,
            mib=MAX_DNC_BYTES // (1024 * 1024),
        )
        return refused(too_large, [])
    try:
        read = parse_file(
            data,
            services.phone_region,
            chosen,
            scope_id,
            kind=Kind.XLSX if name.lower().endswith(".xlsx") else Kind.CSV,
            allow_vanity=services.allow_vanity_numbers,
        )
    except SheetError as exc:
        return refused(f"{name}: {say(exc.said)}", [])
    rows, errors = read.rows, read.errors
    target = f"{chosen.value}:{scope_id}"
    now = services.clock()
    with services.sessions() as session:
        if errors:
            detail = {"file": name, "errors": len(errors), "via": "console"}
            record(session, user.username, "dnc-import-refused", target, now, detail=detail)
            return refused(
                translate(
                    "%(n)s bad row(s) in %(name)s; nothing was imported. Fix or delete those "
                    "rows and import the file again.",
                    n=len(errors),
                    name=name,
                ),
                [
                    {"line": e.line, "message": problem(e.message, e.said)}
                    for e in errors[:SHOWN_ERRORS]
                ],
                len(errors),
            )
        secret = services.number_secret
        if not secret:
            raise HTTPException(
                503, gettext("the number key is not configured, so no list can be stored")
            )
        added, known = add_entries(
            session, rows, lambda e164: number_key(secret, e164), name, user.username, now
        )
        detail = {
            "file": name,
            "added": added,
            "already": known,
            "via": "console",
            "encoding": read.encoding,
        }
        record(session, user.username, "dnc-import", target, now, detail=detail)
    result = {
        "added": added,
        "already": known,
        "scope": chosen.value,
        "scope_id": scope_id,
        "warnings": [say(w) for w in read.warnings],
    }
    return _page(
        request,
        "admin_dnc.html",
        user,
        token,
        title=gettext("Admin: do-not-call"),
        section="dnc",
        result=result,
        errors=[],
        error=None,
        form=form,
    )


# --- call policy preset -----------------------------------------------------------------------


def _policy_page(
    request: Request, user: User, csrf: str, status: int = 200, **context: Any
) -> HTMLResponse:
    services = services_of(request)
    with services.sessions() as session:
        row = session.get(SiteSetting, POLICY_PRESET)
        stored = None if row is None else (row.value, row.updated_by, row.updated_at)
    active = stored[0] if stored and stored[0] in PRESETS else services.policy_preset
    presets = [(name, describe_policy(policy)) for name, policy in PRESETS.items()]
    return _page(
        request,
        "admin_policy.html",
        user,
        csrf,
        status=status,
        title=gettext("Admin: call policy"),
        section="policy",
        active=active,
        stored=stored,
        default=services.policy_preset,
        presets=presets,
        **context,
    )


@router.get("/policy")
def policy_page(request: Request) -> Response:
    user, csrf = _admin(request)
    return _policy_page(request, user, csrf)


@router.post("/policy")
def set_policy(
    request: Request,
    preset: Annotated[str, Form(max_length=32)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    user, token = form_user(request, csrf, Role.ADMIN)
    if preset not in PRESETS:
        unknown = translate("unknown preset %(name)r; nothing was changed", name=preset)
        return _policy_page(request, user, token, 400, error=unknown)
    services = services_of(request)
    now = services.clock()
    with services.sessions() as session:
        row = session.get(SiteSetting, POLICY_PRESET)
        before = row.value if row is not None else services.policy_preset
        write_setting(session, POLICY_PRESET, preset, user.username, now)
        detail = {"from": before, "to": preset}
        record(session, user.username, "policy-preset-changed", preset, now, detail=detail)
    return _policy_page(
        request,
        user,
        token,
        message=translate("the dialer now decides every new call with %(name)s", name=preset),
    )


# --- rule packs -------------------------------------------------------------------------------


def _packs_page(
    request: Request, user: User, csrf: str, status: int = 200, **context: Any
) -> HTMLResponse:
    services = services_of(request)
    with services.sessions() as session:
        found = rule_packs.choices(session)
        active = rule_packs.active_ref(session, services.qa_pack)
        chosen = read_setting(session, QA_PACK) is not None
    label = next((f"{p.name} v{p.version}" for p in found if p.ref == active), services.qa_pack)
    context.setdefault("hint", None)
    return _page(
        request,
        "admin_packs.html",
        user,
        csrf,
        status=status,
        title=gettext("Admin: rule packs"),
        section="packs",
        packs=found,
        active=active,
        pack_label=label,
        chosen=chosen,
        **context,
    )


@router.get("/packs")
def packs_page(request: Request) -> Response:
    user, csrf = _admin(request)
    return _packs_page(request, user, csrf)


@router.post("/packs")
def upload_pack(
    request: Request,
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A pack is stored only when the whole of it loads; the error names line and field."""
    user, token = form_user(request, csrf, Role.ADMIN)
    services = services_of(request)
    name = re.sub(r"[^\w.@-]", "_", file.filename or "pack.yaml")[:200]
    data = file.file.read(rule_packs.MAX_PACK_BYTES + 1)
    now = services.clock()
    with services.sessions() as session:
        try:
            row = rule_packs.upload(session, data, name, user.username, now)
        except (QaError, ApiError) as exc:
            session.rollback()
            why = {"error": str(exc)[:400]}
            record(session, user.username, "qa-pack-refused", name, now, detail=why)
            return _packs_page(request, user, token, 400, error=str(exc), hint=exc.hint)
        pack = f"{row.name} v{row.version}"
        detail = {"file": name, "sha256": row.sha256, "rules": row.rules}
        record(session, user.username, "qa-pack-uploaded", pack, now, detail=detail)
        message = translate(
            "pack %(name)s version %(version)s (%(rules)s rules) is stored; make it active to "
            "score new calls with it",
            name=row.name,
            version=row.version,
            rules=row.rules,
        )
    return _packs_page(request, user, token, message=message)


@router.post("/packs/active")
def choose_pack(
    request: Request,
    ref: Annotated[str, Form(max_length=80, pattern=r"^(shipped:[A-Za-z0-9_-]+|uploaded:\d+)$")],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    user, token = form_user(request, csrf, Role.ADMIN)
    services = services_of(request)
    now = services.clock()
    with services.sessions() as session:
        before = rule_packs.active_ref(session, services.qa_pack)
        try:
            chosen = rule_packs.choose(session, ref, user.username, now)
        except (QaError, ApiError) as exc:
            session.rollback()
            return _packs_page(request, user, token, 400, error=str(exc))
        pack = f"{chosen.name} v{chosen.version}"
        detail = {"from": before, "to": ref}
        record(session, user.username, "qa-pack-activated", pack, now, detail=detail)
    message = translate(
        "new transcripts are scored with %(name)s version %(version)s",
        name=chosen.name,
        version=chosen.version,
    )
    return _packs_page(request, user, token, message=message)


# --- keys -------------------------------------------------------------------------------------


@router.get("/keys")
def keys_page(request: Request) -> Response:
    """Key ids and what they protect; key material never leaves the key ring."""
    user, csrf = _admin(request)
    services = services_of(request)
    with services.sessions() as session:
        uses = key_usage(session, services.keys)
    return _page(
        request,
        "admin_keys.html",
        user,
        csrf,
        title=gettext("Admin: keys"),
        section="keys",
        uses=uses,
    )


# --- clients' contracts -----------------------------------------------------------------------


def _clients_page(
    request: Request, user: User, csrf: str, status: int = 200, **context: Any
) -> HTMLResponse:
    services = services_of(request)
    with services.sessions() as session:
        ended = list(session.scalars(select(ClientContract).order_by(ClientContract.ended_at)))
    context.setdefault("form", {})
    return _page(
        request,
        "admin_clients.html",
        user,
        csrf,
        status=status,
        title=gettext("Admin: clients"),
        section="clients",
        ended=ended,
        **context,
    )


@router.get("/clients")
def clients_page(request: Request) -> Response:
    user, csrf = _admin(request)
    return _clients_page(request, user, csrf)


@router.post("/clients/end")
def end_client_contract(
    request: Request,
    client: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=500)],
    confirm: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """End a client's contract: its data goes as its retention ends; no extension after."""
    user, token = form_user(request, csrf, Role.ADMIN)
    client, form = client.strip(), {"client": client, "reason": reason}
    why = text_problem(reason)
    if why is not None:
        return _clients_page(
            request, user, token, 400, form=form, error=translate("The reason %(why)s.", why=why)
        )
    if confirm.strip() != client:
        typed = gettext("type the client id again to confirm; nothing was changed")
        return _clients_page(request, user, token, 400, form=form, error=typed)
    services = services_of(request)
    try:
        with services.sessions() as session:
            done = end_contract(session, client, user.username, reason.strip(), services.clock())
    except ApiError as exc:
        return _clients_page(request, user, token, 400, form=form, error=f"{exc} - {exc.hint}")
    return _clients_page(request, user, token, message=done.message())


# --- the audit log ----------------------------------------------------------------------------

AUDIT_SHOWN = 100


@router.get("/audit")
def audit_page(
    request: Request,
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The newest entries of the audit log, each action shown in the reader's words beside its
    stored code; reading it is audited as the API's reading is."""
    user, csrf = _admin(request)
    services = services_of(request)
    actor, action = actor.strip(), action.strip()
    query = visible_entries(user).order_by(AuditEntry.seq.desc()).limit(AUDIT_SHOWN)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    with services.sessions() as session:
        rows = list(session.scalars(query))
        entries = [
            {
                "seq": row.seq,
                "at": as_utc(row.at),
                "actor": row.actor,
                "action": row.action,
                "label": action_label(row.action),
                "description": action_description(row.action),
                "target": row.target,
                "reason": row.reason,
            }
            for row in rows
        ]
        detail = {"actor": actor or None, "action": action or None, "via": "console"}
        record(session, user.username, "audit-read", "audit_log", services.clock(), detail=detail)
    return _page(
        request,
        "admin_audit.html",
        user,
        csrf,
        title=gettext("Admin: audit log"),
        section="audit",
        entries=entries,
        actions=sorted((action_label(code), code) for code in ACTIONS),
        form={"actor": actor, "action": action},
        shown=AUDIT_SHOWN,
    )
