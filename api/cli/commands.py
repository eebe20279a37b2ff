"""What each `dialguard` subcommand does; `api.cli.main` parses and dispatches to these.

Every handler takes the settings and the parsed arguments and returns the
exit status; errors with a hint are printed by the dispatcher in one line. What an operator
reads is in their language (`api.cli.main` picks it: the shell's locale, else the site's);
what a script reads (tokens, JSON, URIs) stays as it is.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.cli.doctor import Status, hinted, open_database, render, run_doctor
from api.console.labels import label
from api.errors import ApiError
from api.i18n import N_, gettext, translate, when
from api.import_messages import problem, row_error, say
from api.migrate import upgrade
from api.settings import Settings
from api.wiring import key_ring, storage_copies, storage_settings
from recording.db.engine import as_utc, session_factory
from recording.errors import HintedError

if TYPE_CHECKING:
    from api.accounts.models import User
    from transcribe.result import Transcript

#: The phases a debtor import reports its progress in (`dialer.debtors.bulk_import`).
_PHASES = {"validated": N_("validated"), "written": N_("written")}


def migrated(settings: Settings) -> Engine:
    engine = open_database(settings)
    upgrade(engine)
    return engine


def _read_input(path: Path) -> bytes:
    """A file the operator named, or an error that names it and says why."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ApiError(
            translate("cannot read %(file)s: %(why)s", file=path, why=exc.strerror),
            hint=gettext("check the path"),
        ) from None


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
    print(gettext("database schema is up to date"))
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(gettext("Password: "))
    if first != getpass.getpass(gettext("Repeat password: ")):
        raise ApiError(
            gettext("the passwords differ"), hint=gettext("type the same password twice")
        )
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
    if user.client_id:
        print(
            translate(
                "created %(role)s %(name)s of client %(client)s",
                role=user.role.value,
                name=user.username,
                client=user.client_id,
            )
        )
    else:
        print(translate("created %(role)s %(name)s", role=user.role.value, name=user.username))
    return 0


def _active_user(session: Session, username: str) -> User:
    """The account an admin command acts on; a disabled one is refused like a missing one."""
    from api.accounts.models import User

    user = session.scalar(select(User).where(User.username == username))
    if user is None or user.disabled:
        raise ApiError(
            translate("no active user %(name)s", name=repr(username)),
            hint="dialguard admin create-user",
        )
    return user


def create_token(settings: Settings, args: argparse.Namespace) -> int:
    from api.audit.chain import record
    from api.web.auth import issue_token

    now = datetime.now(UTC)
    with _sessions(settings)() as session:
        user = _active_user(session, args.username)
        token = issue_token(session, user, args.name, now)
        record(session, "admin-cli", "token-issued", user.username, now, detail={"name": args.name})
    print(token)
    return 0


def enroll_totp(settings: Settings, args: argparse.Namespace) -> int:
    from api.accounts.sessions import enroll_totp as enroll
    from api.accounts.totp import provisioning_uri
    from api.audit.chain import record

    now = datetime.now(UTC)
    with _sessions(settings)() as session:
        user = _active_user(session, args.username)
        secret = enroll(session, user, key_ring(settings))
        record(session, "admin-cli", "totp-enrolled", user.username, now)
    print(
        translate(
            "one-time codes for %(name)s: add this to an authenticator app, then discard it",
            name=args.username,
        )
    )
    print(provisioning_uri(secret, args.username))
    print(translate("secret (to type in by hand): %(secret)s", secret=secret))
    return 0


def set_sip_password(settings: Settings, args: argparse.Namespace) -> int:
    from api.audit.chain import record
    from dialer.softphones import set_sip_password as store

    password = _read_password(args.password_stdin)
    if len(password) < 12:
        raise ApiError(
            gettext("a SIP password needs at least 12 characters"),
            hint=gettext("softphones keep it; choose a long random one"),
        )
    now = datetime.now(UTC)
    with _sessions(settings)() as session:
        user = _active_user(session, args.username)
        store(session, user.username, settings.sip_realm, password, now)
        record(session, "admin-cli", "sip-password-set", user.username, now)
    print(
        translate(
            "SIP login set for %(name)s (realm %(realm)s)",
            name=user.username,
            realm=settings.sip_realm,
        )
    )
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
        lines = [*report.lines(), gettext("anchors not checked (--offline)")]
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
        lines.insert(
            -1, translate("anchors: %(n)s in %(where)s", n=report.anchors, where=store.where)
        )
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
    print(
        translate("key-encryption key %(id)s is current (was %(before)s)", id=kek_id, before=before)
    )
    print(
        translate(
            "re-wrapped the data keys of %(recordings)s recording(s), %(debtors)s debtor(s) "
            "and %(fields)s sealed field(s) (one-time-code secrets, queued numbers)",
            recordings=done.recordings,
            debtors=done.debtors,
            fields=done.fields,
        )
    )
    print(
        gettext("keep the older keys in the key file: anything sealed under them still needs them")
    )
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
            data = _read_input(args.file)
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
                raise ApiError(f"{args.file}: {say(exc.said)}", hint=exc.hint) from None
            rows, errors = read.rows, read.errors
            for warning in read.warnings:
                print(f"{args.file}: {say(warning)}", file=sys.stderr)
            for error in errors:
                shown = row_error(error.line, "", error.message, error.said)
                print(f"{args.file}: {shown}", file=sys.stderr)
            if errors:
                raise ApiError(
                    translate("%(n)s bad row(s); nothing was imported", n=len(errors)),
                    hint=gettext("fix or delete those rows and import the file again"),
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
            print(
                translate(
                    "%(added)s number(s) added to the %(scope)s list, %(known)s already on it",
                    added=added,
                    scope=scope.value,
                    known=known,
                )
            )
            return 0
        try:
            e164 = normalize(
                args.number, settings.phone_region, allow_vanity=settings.allow_vanity_numbers
            )
        except MalformedNumber as exc:
            raise ApiError(
                say(exc.said), hint=gettext("give the number with its country code")
            ) from None
        key = number_key(secret, e164)
        if args.dnc_command == "check":
            entry = listed(session, key, args.client, args.debtor)
            if entry is None:
                print(translate("%(number)s is on no do-not-call list", number=mask(e164)))
                return 1
            print(
                translate(
                    "%(number)s is on the %(scope)s list: %(reason)s",
                    number=entry.number_masked,
                    scope=entry.scope,
                    reason=entry.reason,
                )
            )
            return 0
        if not remove(session, key, scope, scope_id):
            raise ApiError(
                translate(
                    "%(number)s is not on the %(scope)s list", number=mask(e164), scope=scope.value
                ),
                hint="dnc check",
            )
        detail = {"number": mask(e164)}
        record(session, "admin-cli", "dnc-remove", f"{scope.value}:{scope_id}", now, detail=detail)
        print(
            translate(
                "%(number)s removed from the %(scope)s list", number=mask(e164), scope=scope.value
            )
        )
        return 0


def debtors_import(settings: Settings, args: argparse.Namespace) -> int:
    """Import a debtors file whole or not at all; the bad rows go to an error file."""
    from api.audit.chain import record
    from dialer.debtors import Sealer
    from dialer.debtors.bulk_import import Format, guess_format, import_debtors, write_error_file
    from dialer.numbers import load_or_create_secret

    fmt = Format(args.format) if args.format else guess_format(args.file.name, None)
    if fmt is None:
        raise ApiError(
            translate("cannot tell the format of %(file)s", file=args.file),
            hint=gettext("pass --format csv|json|xlsx"),
        )
    data = _read_input(args.file)
    sealer = Sealer(key_ring(settings), load_or_create_secret(settings.number_key_file))
    sessions = _sessions(settings)
    now = datetime.now(UTC)

    def progress(phase: str, done: int, total: int) -> None:
        print(
            translate(
                "%(phase)s %(done)s/%(total)s rows",
                phase=gettext(_PHASES.get(phase, phase)),
                done=done,
                total=total,
            ),
            flush=True,
        )

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
        print(f"{args.file}: {say(warning)}", file=sys.stderr)
    detail = {
        "file": args.file.name,
        "format": fmt.value,
        "rows": result.rows,
        "encoding": result.encoding,
    }
    if not result.ok:
        errors_path = args.errors or args.file.with_name(args.file.name + ".errors.csv")
        write_error_file(result.errors, errors_path, lambda e: problem(e.message, e.said))
        for error in result.errors[:10]:
            shown = row_error(error.line, error.field, error.message, error.said)
            print(f"{args.file}: {shown}", file=sys.stderr)
        with sessions() as session:
            refused = {**detail, "errors": len(result.errors)}
            record(session, "admin-cli", "debtor-import-refused", "debtors", now, detail=refused)
        raise ApiError(
            translate(
                "%(n)s problem(s) in %(file)s; nothing was imported; every problem is in %(path)s",
                n=len(result.errors),
                file=args.file,
                path=errors_path,
            ),
            hint=gettext("fix those rows and import the file again"),
        )
    with sessions() as session:
        done = {**detail, "created": result.created, "updated": result.updated}
        record(session, "admin-cli", "debtor-import", "debtors", now, detail=done)
    print(
        translate(
            "%(rows)s debtor(s) imported: %(created)s new, %(updated)s updated",
            rows=result.rows,
            created=result.created,
            updated=result.updated,
        )
    )
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
        print(f"dialguard: {hinted(exc)}", file=sys.stderr)
        return 2
    shown = answer.pop("shown", answer["reason"])
    print(json.dumps(answer, ensure_ascii=False) if args.json else shown)
    return 0 if answer["allowed"] else 1


def search(settings: Settings, args: argparse.Namespace) -> int:
    from api.web.problems import localised
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
        raise ApiError(
            localised(str(exc)), hint=gettext("see dialguard transcripts search --help")
        ) from None
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
            f"{when(as_utc(h.recorded_at))} {h.recording_id} "
            f"{h.start:7.1f}s {label('speaker', h.speaker):>6} {h.agent}: {h.excerpt}"
        )
    if page.has_more:
        more = f"--offset {page.offset + page.limit}"
        print(translate("... more: %(option)s", option=more))
    return 0


def _whisper(settings: Settings) -> Any:
    """The engine as the transcription worker loads it, so the CLI hears what it hears."""
    from transcribe.engine import load_engine, threads_per_worker
    from transcribe.model_store import resolve_model

    return load_engine(
        resolve_model(settings.whisper_model, settings.models_dir),
        settings.whisper_device,
        settings.whisper_batch,
        settings.whisper_beam,
        threads_per_worker(settings.whisper_threads, 1, os.cpu_count() or 1),
    )


def transcribe(settings: Settings, args: argparse.Namespace) -> int:
    from transcribe.transcriber import transcribe_recording

    result = transcribe_recording(
        _whisper(settings), settings.whisper_model, args.file, args.language
    )
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return 0
    for segment in result.segments:
        minutes, seconds = divmod(segment.start, 60)
        speaker = label("speaker", segment.speaker.value)
        print(f"[{int(minutes):02d}:{seconds:04.1f} {speaker:>6}] {segment.text}")
    return 0


def _recogniser(settings: Settings) -> Callable[[Path, str | None], Transcript]:
    """Whisper as configured, loaded on first use: `qa check` and `qa eval` hear audio alike."""
    from transcribe.transcriber import transcribe_recording

    models: list[Any] = []

    def hear(path: Path, language: str | None) -> Transcript:
        if not models:
            models.append(_whisper(settings))
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
    print(translate("score %(score)s/100 (%(pack)s)", score=result.score, pack=pack))
    for flag in result.flags:
        template = (
            N_("level %(level)s %(category)s (listen): %(text)s")
            if flag.needs_listening
            else N_("level %(level)s %(category)s: %(text)s")
        )
        category = label("category", flag.category)
        line = translate(template, level=flag.severity, category=category, text=flag.text)
        print(f"  {flag.start:7.1f}s {line}")
    for item in result.missing:
        print("  " + translate("missing: %(category)s", category=label("category", item.category)))
    return 0


def _stored_pack(settings: Settings, name: str) -> Any:
    """A pack argument: 'active', a stored ref (shipped:NAME, uploaded:ID), or a name or path."""
    from qa_scoring import pack_store

    if name != "active" and not name.startswith(("uploaded:", "shipped:")):
        return name
    with session_factory(migrated(settings))() as session:
        ref = pack_store.active_ref(session, settings.qa_pack) if name == "active" else name
        return pack_store.load_ref(session, ref)


#: The words of `qa eval`'s tables (qa_scoring/eval.py), shown through gettext.
_EVAL_WORDS = (
    N_("category"),
    N_("precision"),
    N_("recall"),
    N_("support"),
    N_("missing"),
    N_("change"),
    N_("right with %(second)s, wrong with %(first)s: %(n)d"),
    N_("wrong with %(second)s, right with %(first)s: %(n)d"),
)


def qa_eval(settings: Settings, args: argparse.Namespace) -> int:
    """Recordings in DIR are transcribed with the configured model; transcripts are read."""
    from qa_scoring import evaluate

    if getattr(args, "candidate", None):
        return _qa_eval_candidate(settings, args)
    args.pack = _stored_pack(settings, args.pack)
    report = evaluate(args.dir, args.pack, _recogniser(settings))
    if not getattr(args, "semantic", False):
        if args.json:
            print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
            return 0
        print(report.table(gettext))
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
        print(shown.table(gettext))
        for mistake in shown.mistakes:
            print(f"  {mistake}")
    return 0


def _qa_eval_candidate(settings: Settings, args: argparse.Namespace) -> int:
    """Rules + meaning with --pack and with --candidate, side by side, on the same corpus."""
    from qa_scoring import evaluate
    from qa_scoring.embedding import E5Embedder
    from qa_scoring.eval import compare_table

    embedder = E5Embedder()
    hear = _recogniser(settings)
    reports = [
        evaluate(args.dir, _stored_pack(settings, name), hear, embedder=embedder)
        for name in (args.pack, args.candidate)
    ]
    if args.json:
        out = {args.pack: reports[0].to_json(), args.candidate: reports[1].to_json()}
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(compare_table(reports[0], reports[1], args.pack, args.candidate, gettext))
    return 0


def qa_example_add(settings: Settings, args: argparse.Namespace) -> int:
    """A new, inactive pack version with the reviewed flags' sentences; audited."""
    from api.audit.chain import record
    from qa_scoring.pack_store import add_reviewed_examples

    now = datetime.now(UTC)
    with _sessions(settings)() as session:
        learned = add_reviewed_examples(
            session, args.flag, args.to, "admin-cli", now, settings.qa_pack, args.base
        )
        row = learned.row
        added = [{"flag": a.flag_id, "to": a.to} for a in learned.additions]
        detail = {"ref": learned.ref, "base": learned.base, "sha256": row.sha256, "added": added}
        target = f"{row.name} v{row.version}"
        record(session, "admin-cli", "qa-pack-examples-added", target, now, detail=detail)
    for a in learned.additions:
        print(translate("flag %(flag)s -> %(to)s: %(text)s", flag=a.flag_id, to=a.to, text=a.text))
    print(
        translate(
            "stored %(pack)s as %(ref)s (from %(base)s); it is not active",
            pack=target,
            ref=learned.ref,
            base=learned.base,
        )
    )
    command = f"dialguard qa eval FILE --semantic --pack active --candidate {learned.ref}"
    print(translate("before activating it, compare: %(command)s", command=command))
    return 0


def qa_calibrate(settings: Settings, args: argparse.Namespace) -> int:
    """Prints thresholds to copy into the pack's `semantic:` section; changes nothing itself."""
    from qa_scoring.embedding import E5Embedder
    from qa_scoring.eval import calibrate_thresholds

    thresholds = calibrate_thresholds(args.file, args.pack, E5Embedder(), calls=args.calls)
    for category, value in thresholds.items():
        print(f"{category}: {value}")
    return 0
