"""The `dialguard` command."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from api import __version__
from api.doctor import Status, open_database, render, run_doctor
from api.errors import ApiError
from api.migrate import upgrade
from api.settings import Settings
from api.wiring import key_ring, storage_copies, storage_settings
from dialer.errors import DialerError
from recording.db import session_factory
from recording.errors import RecordingError
from transcribe.errors import TranscribeError


def _settings_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = "_".join(str(part) for part in first["loc"]).upper()
    message = first["msg"].removeprefix("Value error, ")
    return f"dialguard: DIALGUARD_{field}: {message}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialguard", description="Telephony and call-recording server for collections."
    )
    parser.add_argument("--version", action="version", version=f"dialguard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="run the whole product until Ctrl-C or SIGTERM")
    commands.add_parser("doctor", help="check this installation; non-zero exit on a failure")
    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply pending migrations")
    admin = commands.add_parser("admin", help="administration").add_subparsers(
        dest="admin_command", required=True
    )
    create = admin.add_parser("create-user", help="create an account")
    create.add_argument("username")
    create.add_argument(
        "--role", required=True, choices=["agent", "qa", "supervisor", "admin", "auditor"]
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    rec = commands.add_parser("recording", help="recordings").add_subparsers(
        dest="recording_command", required=True
    )
    store = rec.add_parser(
        "store", help="import an outside recording through the same pipeline as a call"
    )
    store.add_argument("file", type=Path)
    store.add_argument("--call-id", required=True)
    store.add_argument("--agent", default="import")
    store.add_argument("--debtor")
    store.add_argument("--recorded-at", type=datetime.fromisoformat, help="ISO 8601; default now")
    fetch = rec.add_parser("fetch", help="decrypt a recording to a WAV (or .ogg) file")
    fetch.add_argument("id")
    fetch.add_argument("-o", "--output", type=Path, required=True)
    check = rec.add_parser("verify", help="both copies present, hashes match, decrypt test")
    which = check.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?")
    which.add_argument("--all", action="store_true")
    policy = commands.add_parser("policy", help="call policy").add_subparsers(
        dest="policy_command", required=True
    )
    ask = policy.add_parser(
        "check", help="may this number be called at this moment, and if not when"
    )
    ask.add_argument("--number", required=True)
    ask.add_argument("--at", required=True, type=datetime.fromisoformat, help="ISO 8601 time")
    ask.add_argument("--debtor", help="debtor id; default: the number itself")
    ask.add_argument("--preset", help="cn-default, cn-workdays or us-regf; default: the setting")
    ask.add_argument("--history", type=Path, help='JSON list of {"at", "connected"} attempts')
    ask.add_argument("--json", action="store_true", help="print JSON (the default is a sentence)")
    found = commands.add_parser("transcripts", help="transcripts").add_subparsers(
        dest="transcripts_command", required=True
    )
    query = found.add_parser("search", help="search what was said, newest calls first")
    query.add_argument("text", nargs="?", default="")
    query.add_argument("--agent")
    query.add_argument("--debtor")
    query.add_argument("--speaker", choices=["agent", "debtor"])
    query.add_argument("--from", dest="date_from", type=datetime.fromisoformat)
    query.add_argument("--to", dest="date_to", type=datetime.fromisoformat)
    query.add_argument("--limit", type=int, default=20)
    query.add_argument("--offset", type=int, default=0)
    query.add_argument("--json", action="store_true")
    speech = commands.add_parser(
        "transcribe", help="transcribe a recording (mono: agent; stereo: agent left, debtor right)"
    )
    speech.add_argument("file", type=Path)
    speech.add_argument("--json", action="store_true", help="print JSON instead of lines")
    speech.add_argument("--language", help="language code (zh, en ...); detected if not given")
    return parser


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise ApiError("the passwords differ", hint="type the same password twice")
    return first


def _create_user(settings: Settings, args: argparse.Namespace) -> int:
    from api.users import create_user

    password = _read_password(args.password_stdin)
    engine = open_database(settings)
    upgrade(engine)
    with session_factory(engine)() as session:
        user = create_user(session, args.username, args.role, password, datetime.now(UTC))
    print(f"created {user.role.value} {user.username}")
    return 0


def _transcribe(settings: Settings, args: argparse.Namespace) -> int:
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


def _recording(settings: Settings, args: argparse.Namespace) -> int:
    from api import recordings

    engine = open_database(settings)
    upgrade(engine)
    sessions = session_factory(engine)
    with storage_settings(settings) as ready:
        copies, keys = storage_copies(ready), key_ring(ready)
        if args.recording_command == "store":
            return recordings.store(ready, sessions, copies, keys, args)
        if args.recording_command == "fetch":
            return recordings.fetch_to(ready, sessions, copies, keys, args.id, args.output)
        return recordings.verify_some(sessions, copies, keys, None if args.all else args.id)


def _search(settings: Settings, args: argparse.Namespace) -> int:
    from transcribe.search import SearchError, SearchQuery, search

    engine = open_database(settings)
    upgrade(engine)
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
        with session_factory(engine)() as session:
            page = search(session, query)
    except SearchError as exc:
        raise ApiError(str(exc), hint="see dialguard transcripts search --help") from None
    if args.json:
        hits = [
            {
                "recording_id": h.recording_id,
                "speaker": h.speaker,
                "start": h.start,
                "end": h.end,
                "snippet": h.snippet,
                "agent": h.agent,
                "debtor_id": h.debtor_id,
                "recorded_at": h.recorded_at.isoformat(),
            }
            for h in page.hits
        ]
        print(json.dumps({"hits": hits, "has_more": page.has_more}, ensure_ascii=False))
        return 0
    for h in page.hits:
        print(
            f"{h.recorded_at:%Y-%m-%d %H:%M} {h.recording_id} {h.start:7.1f}s "
            f"{h.speaker:>6} {h.agent}: {h.snippet}"
        )
    if page.has_more:
        print(f"... more: --offset {page.offset + page.limit}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(_settings_error(exc), file=sys.stderr)
        return 2
    try:
        if args.command == "up":
            from api.supervisor import run_up

            return run_up(settings)
        if args.command == "doctor":
            results = run_doctor(settings)
            print(render(results))
            return 1 if any(r.status is Status.FAIL for r in results) else 0
        if args.command == "db":
            upgrade(open_database(settings))
            print("database schema is up to date")
            return 0
        if args.command == "admin":
            return _create_user(settings, args)
        if args.command == "recording":
            return _recording(settings, args)
        if args.command == "policy":
            from api.policy_check import policy_check

            answer = policy_check(
                settings,
                args.number,
                args.at,
                args.debtor,
                args.preset or settings.policy_preset,
                args.history,
            )
            print(json.dumps(answer, ensure_ascii=False) if args.json else answer["reason"])
            return 0
        if args.command == "transcripts":
            return _search(settings, args)
        if args.command == "transcribe":
            return _transcribe(settings, args)
    except (ApiError, DialerError, RecordingError, TranscribeError) as exc:
        print(
            f"dialguard: {exc} - {exc.hint}" if exc.hint else f"dialguard: {exc}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
