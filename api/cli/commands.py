"""What each `dialguard` subcommand does; `api.cli.main` parses and dispatches to these.

Every handler takes the settings and the parsed arguments and returns the
exit status; errors with a hint are printed by the dispatcher in one line.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.cli.doctor import Status, open_database, render, run_doctor
from api.errors import ApiError
from api.migrate import upgrade
from api.settings import Settings
from api.wiring import key_ring, storage_copies, storage_settings
from recording.db.engine import session_factory
from recording.errors import HintedError

if TYPE_CHECKING:
    from transcribe.result import Transcript


def migrated(settings: Settings) -> Engine:
    engine = open_database(settings)
    upgrade(engine)
    return engine


def _sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the migrated database whose audit entries carry the MAC."""
    from api.audit.chain import with_audit_key
    from api.wiring import audit_key

    key = audit_key(settings)
    assert key is not None
    return with_audit_key(session_factory(migrated(settings)), key)


def up(settings: Settings, _args: argparse.Namespace) -> int:
    from api.cli.supervisor import run_up

    return run_up(settings)


def doctor(settings: Settings, _args: argparse.Namespace) -> int:
    results = run_doctor(settings)
    print(render(results))
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    migrated(settings)
    print("database schema is up to date")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise ApiError("the passwords differ", hint="type the same password twice")
    return first


def create_user(settings: Settings, args: argparse.Namespace) -> int:
    from api.accounts.models import Role
    from api.accounts.users import client_for
    from api.accounts.users import create_user as create
    from api.audit.chain import record

    client_for(Role(args.role), args.client)  # an auditor without a client: refused before asking
    password = _read_password(args.password_stdin)
    with _sessions(settings)() as session:
        user = create(
            session, args.username, args.role, password, datetime.now(UTC), client=args.client
        )
        detail = {"role": user.role.value, "client": user.client_id}
        record(
            session, "admin-cli", "user-created", user.username, datetime.now(UTC), detail=detail
        )
    shown = f" of client {user.client_id}" if user.client_id else ""
    print(f"created {user.role.value} {user.username}{shown}")
    return 0


def create_token(settings: Settings, args: argparse.Namespace) -> int:
    from api.accounts.models import User
    from api.audit.chain import record
    from api.web.auth import issue_token

    now = datetime.now(UTC)
    with _sessions(settings)() as session:
        user = session.scalar(select(User).where(User.username == args.username))
        if user is None or user.disabled:
            raise ApiError(f"no active user {args.username!r}", hint="dialguard admin create-user")
        token = issue_token(session, user, args.name, now)
        record(session, "admin-cli", "token-issued", user.username, now, detail={"name": args.name})
    print(token)
    return 0


def enroll_totp(settings: Settings, args: argparse.Namespace) -> int:
    from api.accounts.models import User
    from api.accounts.sessions import enroll_totp as enroll
    from api.accounts.totp import provisioning_uri
    from api.audit.chain import record

    now = datetime.now(UTC)
    with _sessions(settings)() as session:
        user = session.scalar(select(User).where(User.username == args.username))
        if user is None or user.disabled:
            raise ApiError(f"no active user {args.username!r}", hint="dialguard admin create-user")
        secret = enroll(session, user, key_ring(settings))
        record(session, "admin-cli", "totp-enrolled", user.username, now)
    print(f"one-time codes for {args.username}: add this to an authenticator app, then discard it")
    print(provisioning_uri(secret, args.username))
    print(f"secret (to type in by hand): {secret}")
    return 0


def set_sip_password(settings: Settings, args: argparse.Namespace) -> int:
    from api.accounts.models import User
    from api.audit.chain import record
    from dialer.softphones import set_sip_password as store

    password = _read_password(args.password_stdin)
    if len(password) < 12:
        raise ApiError(
            "a SIP password needs at least 12 characters",
            hint="softphones keep it; choose a long random one",
        )
    now = datetime.now(UTC)
    with _sessions(settings)() as session:
        user = session.scalar(select(User).where(User.username == args.username))
        if user is None or user.disabled:
            raise ApiError(f"no active user {args.username!r}", hint="dialguard admin create-user")
        store(session, user.username, settings.sip_realm, password, now)
        record(session, "admin-cli", "sip-password-set", user.username, now)
    print(f"SIP login set for {user.username} (realm {settings.sip_realm})")
    return 0


def audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    """The chain's hashes, its MACs (with the audit key) and the anchors in WORM storage."""
    from api.audit.anchors import AnchorStore
    from api.audit.chain import check
    from api.wiring import audit_key

    key = audit_key(settings, create=False)
    sessions = session_factory(migrated(settings))
    if args.offline:
        with sessions() as session:
            report = check(session, key)
        lines = [*report.lines(), "anchors not checked (--offline)"]
    else:
        with storage_settings(settings) as ready:
            store = AnchorStore(storage_copies(ready)[0])
            anchors = store.anchors()
            with sessions() as session:
                report = check(session, key, anchors)
            if report.broken_anchors:  # its body names the first entry that no longer matches
                first = store.with_hashes(report.broken_anchors[0])
                others = [a for a in anchors if a.name != first.name]
                with sessions() as session:
                    report = check(session, key, [first, *others])
        lines = report.lines()
        lines.insert(-1, f"anchors: {report.anchors} in {store.where}")
    for line in lines:
        print(line)
    return 0 if report.intact else 1


def clients_end_contract(settings: Settings, args: argparse.Namespace) -> int:
    """End a client's contract: its data goes as its retention ends, no extension after."""
    from api.recordings.contracts import end_contract
    from api.web.params import text_problem

    why = text_problem(args.reason)
    if why is not None:
        raise ApiError(
            f"the reason {why}", hint="say why, e.g. --reason 'commission ended 2026-12'"
        )
    with _sessions(settings)() as session:
        done = end_contract(
            session, args.client, "admin-cli", args.reason.strip(), datetime.now(UTC)
        )
    print(done.message())
    return 0


def keys_rotate(settings: Settings, _args: argparse.Namespace) -> int:
    """A new current key-encryption key; recordings' and debtors' data keys re-wrapped under it."""
    from api.audit.chain import record
    from api.key_rotation import rewrap_all

    ring = key_ring(settings)
    sessions = _sessions(settings)
    before = ring.current_kek_id
    kek_id = ring.rotate()
    done = rewrap_all(sessions, ring)
    with sessions() as session:
        detail = {
            "from": before,
            "recordings": done.recordings,
            "debtors": done.debtors,
            "fields": done.fields,
        }
        record(session, "admin-cli", "kek-rotated", kek_id, datetime.now(UTC), detail=detail)
    print(f"key-encryption key {kek_id} is current (was {before})")
    print(
        f"re-wrapped the data keys of {done.recordings} recording(s), {done.debtors} debtor(s) "
        f"and {done.fields} sealed field(s) (one-time-code secrets, queued numbers)"
    )
    print("keep the older keys in the key file: anything sealed under them still needs them")
    return 0


def recording(settings: Settings, args: argparse.Namespace) -> int:
    from api.cli import recording_commands as recordings

    sessions = _sessions(settings)
    with storage_settings(settings) as ready:
        copies, keys = storage_copies(ready), key_ring(ready)
        if args.recording_command == "store":
            return recordings.store(ready, sessions, copies, keys, args)
        if args.recording_command == "fetch":
            return recordings.fetch_to(ready, sessions, copies, keys, args.id, args.output)
        return recordings.verify_some(sessions, copies, keys, None if args.all else args.id)


def dnc(settings: Settings, args: argparse.Namespace) -> int:
    """Import, check or remove do-not-call numbers; imports land whole or not at all."""
    from api.audit.chain import record
    from dialer.dnc import Scope, add_entries, listed, parse_file, remove
    from dialer.numbers import MalformedNumber, load_or_create_secret, mask, normalize, number_key
    from dialer.sheets import Kind, SheetError

    scope, scope_id = Scope.GLOBAL, ""
    if args.client:
        scope, scope_id = Scope.CLIENT, args.client
    elif args.debtor:
        scope, scope_id = Scope.DEBTOR, args.debtor
    secret = load_or_create_secret(settings.number_key_file)
    now = datetime.now(UTC)
    with _sessions(settings)() as session:
        if args.dnc_command == "import":
            try:
                data = args.file.read_bytes()
            except OSError as exc:
                raise ApiError(
                    f"cannot read {args.file}: {exc.strerror}", hint="check the path"
                ) from None
            kind = Kind.XLSX if args.file.suffix.lower() == ".xlsx" else Kind.CSV
            try:
                read = parse_file(
                    data,
                    settings.phone_region,
                    scope,
                    scope_id,
                    kind=kind,
                    encoding=args.encoding,
                    allow_vanity=settings.allow_vanity_numbers,
                )
            except SheetError as exc:
                raise ApiError(f"{args.file}: {exc}", hint=exc.hint) from None
            rows, errors = read.rows, read.errors
            for warning in read.warnings:
                print(f"{args.file}: {warning}", file=sys.stderr)
            for error in errors:
                print(f"{args.file}:{error.line}: {error.message}", file=sys.stderr)
            if errors:
                raise ApiError(
                    f"{len(errors)} bad row(s); nothing was imported",
                    hint="fix or delete those rows and import the file again",
                )
            added, known = add_entries(
                session,
                rows,
                lambda e164: number_key(secret, e164),
                args.file.name,
                "admin-cli",
                now,
            )
            detail = {
                "file": args.file.name,
                "added": added,
                "already": known,
                "encoding": read.encoding,
            }
            record(
                session, "admin-cli", "dnc-import", f"{scope.value}:{scope_id}", now, detail=detail
            )
            print(f"{added} number(s) added to the {scope.value} list, {known} already on it")
            return 0
        try:
            e164 = normalize(
                args.number, settings.phone_region, allow_vanity=settings.allow_vanity_numbers
            )
        except MalformedNumber as exc:
            raise ApiError(str(exc), hint="give the number with its country code") from None
        key = number_key(secret, e164)
        if args.dnc_command == "check":
            entry = listed(session, key, args.client, args.debtor)
            if entry is None:
                print(f"{mask(e164)} is on no do-not-call list")
                return 1
            print(f"{entry.number_masked} is on the {entry.scope} list: {entry.reason}")
            return 0
        if not remove(session, key, scope, scope_id):
            raise ApiError(f"{mask(e164)} is not on the {scope.value} list", hint="dnc check")
        detail = {"number": mask(e164)}
        record(session, "admin-cli", "dnc-remove", f"{scope.value}:{scope_id}", now, detail=detail)
        print(f"{mask(e164)} removed from the {scope.value} list")
        return 0


def debtors_import(settings: Settings, args: argparse.Namespace) -> int:
    """Import a debtors file whole or not at all; the bad rows go to an error file."""
    from api.audit.chain import record
    from dialer.debtors import Sealer
    from dialer.debtors.bulk_import import Format, guess_format, import_debtors, write_error_file
    from dialer.numbers import load_or_create_secret

    fmt = Format(args.format) if args.format else guess_format(args.file.name, None)
    if fmt is None:
        raise ApiError(f"cannot tell the format of {args.file}", hint="pass --format csv|json|xlsx")
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise ApiError(f"cannot read {args.file}: {exc.strerror}", hint="check the path") from None
    sealer = Sealer(key_ring(settings), load_or_create_secret(settings.number_key_file))
    sessions = _sessions(settings)
    now = datetime.now(UTC)

    def progress(phase: str, done: int, total: int) -> None:
        print(f"{phase} {done}/{total} rows", flush=True)

    result = import_debtors(
        sessions,
        data,
        fmt,
        sealer,
        settings.phone_region,
        now,
        progress,
        allow_vanity=settings.allow_vanity_numbers,
        encoding=args.encoding,
    )
    for warning in result.warnings:
        print(f"{args.file}: {warning}", file=sys.stderr)
    detail = {
        "file": args.file.name,
        "format": fmt.value,
        "rows": result.rows,
        "encoding": result.encoding,
    }
    if not result.ok:
        errors_path = args.errors or args.file.with_name(args.file.name + ".errors.csv")
        write_error_file(result.errors, errors_path)
        for error in result.errors[:10]:
            print(f"{args.file}:{error.line}: {error.field}: {error.message}", file=sys.stderr)
        with sessions() as session:
            refused = {**detail, "errors": len(result.errors)}
            record(session, "admin-cli", "debtor-import-refused", "debtors", now, detail=refused)
        raise ApiError(
            f"{len(result.errors)} problem(s) in {args.file}; nothing was imported; "
            f"every problem is in {errors_path}",
            hint="fix those rows and import the file again",
        )
    with sessions() as session:
        done = {**detail, "created": result.created, "updated": result.updated}
        record(session, "admin-cli", "debtor-import", "debtors", now, detail=done)
    print(f"{result.rows} debtor(s) imported: {result.created} new, {result.updated} updated")
    return 0


def policy_check(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0: allowed; 1: refused (the rule and reason printed); 2: no answer (bad input).

    Like `grep` and `dnc check`, so a script can branch on the decision itself.
    """
    from api.cli.policy_check import policy_check as check

    try:
        answer = check(
            settings,
            args.number,
            args.at,
            args.debtor,
            args.preset or settings.policy_preset,
            args.history,
        )
    except HintedError as exc:  # a bad history file or preset: no decision was made
        line = f"dialguard: {exc} - {exc.hint}" if exc.hint else f"dialguard: {exc}"
        print(line, file=sys.stderr)
        return 2
    print(json.dumps(answer, ensure_ascii=False) if args.json else answer["reason"])
    return 0 if answer["allowed"] else 1


def search(settings: Settings, args: argparse.Namespace) -> int:
    from transcribe.search import SearchError, SearchQuery
    from transcribe.search import search as run

    query = SearchQuery(
        text=args.text,
        agent=args.agent,
        debtor_id=args.debtor,
        speaker=args.speaker,
        date_from=args.date_from,
        date_to=args.date_to,
        limit=args.limit,
        offset=args.offset,
    )
    try:
        with _sessions(settings)() as session:
            page = run(session, query)
    except SearchError as exc:
        raise ApiError(str(exc), hint="see dialguard transcripts search --help") from None
    # Plain text here: the HTML snippet (escaped, <mark>ed) is the console's and the API's.
    if args.json:
        hits = [
            {k: v for k, v in vars(h).items() if k != "excerpt"}
            | {"snippet": h.excerpt, "recorded_at": h.recorded_at.isoformat()}
            for h in page.hits
        ]
        print(json.dumps({"hits": hits, "has_more": page.has_more}, ensure_ascii=False))
        return 0
    for h in page.hits:
        print(
            f"{h.recorded_at:%Y-%m-%d %H:%M} {h.recording_id} {h.start:7.1f}s "
            f"{h.speaker:>6} {h.agent}: {h.excerpt}"
        )
    if page.has_more:
        print(f"... more: --offset {page.offset + page.limit}")
    return 0


def transcribe(settings: Settings, args: argparse.Namespace) -> int:
    from transcribe.engine import load_model
    from transcribe.model_store import resolve_model
    from transcribe.transcriber import transcribe_recording

    model = load_model(
        resolve_model(settings.whisper_model, settings.models_dir), settings.whisper_device
    )
    result = transcribe_recording(model, settings.whisper_model, args.file, args.language)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return 0
    for segment in result.segments:
        minutes, seconds = divmod(segment.start, 60)
        print(f"[{int(minutes):02d}:{seconds:04.1f} {segment.speaker.value:>6}] {segment.text}")
    return 0


def _recogniser(settings: Settings) -> Callable[[Path, str | None], Transcript]:
    """Whisper as configured, loaded on first use: `qa check` and `qa eval` hear audio alike."""
    from transcribe.engine import load_model
    from transcribe.model_store import resolve_model
    from transcribe.transcriber import transcribe_recording

    models: list[Any] = []

    def hear(path: Path, language: str | None) -> Transcript:
        if not models:
            models.append(
                load_model(
                    resolve_model(settings.whisper_model, settings.models_dir),
                    settings.whisper_device,
                )
            )
        return transcribe_recording(models[0], settings.whisper_model, path, language)

    return hear


def qa_check(settings: Settings, args: argparse.Namespace) -> int:
    from qa_scoring import check_transcript, load_pack, load_transcript_json

    if args.file.suffix.lower() == ".json":
        data = load_transcript_json(args.file)
        language = str(data.get("language", ""))
        pack = args.pack or ("en-collections" if language.startswith("en") else "cn-collections")
        result = check_transcript(data, pack)
    else:
        hint = load_pack(args.pack).language if args.pack else None
        heard = _recogniser(settings)(args.file, hint)
        pack = args.pack or (
            "en-collections" if heard.language.startswith("en") else "cn-collections"
        )
        result = check_transcript(heard, pack, audio=args.file)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return 0
    print(f"score {result.score}/100 ({pack})")
    for flag in result.flags:
        mark = " (listen)" if flag.needs_listening else ""
        print(f"  {flag.start:7.1f}s level {flag.severity} {flag.category}{mark}: {flag.text}")
    for item in result.missing:
        print(f"  missing: {item.category}")
    return 0


def qa_eval(settings: Settings, args: argparse.Namespace) -> int:
    """Recordings in DIR are transcribed with the configured model; transcripts are read."""
    from qa_scoring import evaluate

    report = evaluate(args.dir, args.pack, _recogniser(settings))
    if not getattr(args, "semantic", False):
        if args.json:
            print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
            return 0
        print(report.table())
        for mistake in report.mistakes:
            print(f"  {mistake}")
        return 0
    from qa_scoring.embedding import E5Embedder

    both = evaluate(args.dir, args.pack, _recogniser(settings), embedder=E5Embedder())
    if args.json:
        out = {"rules": report.to_json(), "rules+semantic": both.to_json()}
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    for title, shown in (("rules", report), ("rules+semantic", both)):
        print(f"== {title}")
        print(shown.table())
        for mistake in shown.mistakes:
            print(f"  {mistake}")
    return 0


def qa_calibrate(settings: Settings, args: argparse.Namespace) -> int:
    """Prints thresholds to copy into the pack's `semantic:` section; changes nothing itself."""
    from qa_scoring.embedding import E5Embedder
    from qa_scoring.eval import calibrate_thresholds

    thresholds = calibrate_thresholds(args.file, args.pack, E5Embedder())
    for category, value in thresholds.items():
        print(f"{category}: {value}")
    return 0
