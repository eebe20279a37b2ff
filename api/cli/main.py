"""The `dialguard` command: argument parsing and dispatch (the work is in `api.cli.commands`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

import api.tables  # noqa: F401  (every table registered before any session opens)
from api import __version__
from api.cli import commands
from api.cli.doctor import hinted
from api.cli.edge_commands import add_edge_commands
from api.i18n import N_, for_operator, gettext, site_default, speaking
from api.settings import Settings
from recording.errors import HintedError

if TYPE_CHECKING:
    Group = argparse._SubParsersAction[argparse.ArgumentParser]


#: argparse's own words, said in the operator's language by `_Formatter` (argparse's error
#: messages, "the following arguments are required" and the like, stay English).
ARGPARSE_WORDS = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("show program's version number and exit"),
)


class _Formatter(argparse.HelpFormatter):
    """`--help` in the operator's language: each text is looked up in the catalogue as it is
    printed, so the parser is built once, in English, and read in either language."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return _said(action.help)

    def add_text(self, text: str | None) -> None:
        super().add_text(_said(text))

    def start_section(self, heading: str | None) -> None:
        super().start_section(_said(heading))

    def add_usage(
        self,
        usage: str | None,
        actions: Any,
        groups: Any,
        prefix: str | None = None,
    ) -> None:
        super().add_usage(usage, actions, groups, gettext("usage: ") if prefix is None else prefix)


def _said(text: str | None) -> str | None:
    if not text or text == argparse.SUPPRESS:
        return text
    return gettext(text)


class _Parser(argparse.ArgumentParser):
    """Every parser and sub-command parser formats its help with `_Formatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _early_language() -> str:
    """The operator's language before the settings are read: `--help` needs none valid."""
    preset = os.environ.get("DIALGUARD_POLICY_PRESET") or "cn-default"
    return for_operator(os.environ, site_default(os.environ.get("DIALGUARD_LANGUAGE"), preset))


def _settings_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = "_".join(str(part) for part in first["loc"]).upper()
    message = first["msg"].removeprefix("Value error, ")
    return f"dialguard: DIALGUARD_{field}: {message}"


def _group(commands_: Group, name: str, help_: str) -> Group:
    parser = commands_.add_parser(name, help=help_)
    return parser.add_subparsers(dest=f"{name}_command", required=True)


def _admin(top: Group) -> None:
    admin = _group(top, "admin", N_("accounts and tokens"))
    user = admin.add_parser("create-user", help=N_("create an account"))
    user.add_argument("username")
    user.add_argument(
        "--role", required=True, choices=["agent", "qa", "supervisor", "admin", "auditor"]
    )
    user.add_argument(
        "--client", help=N_("the client bank whose calls an auditor sees (required for auditors)")
    )
    user.add_argument("--password-stdin", action="store_true", help=N_("read it from stdin"))
    user.set_defaults(handler=commands.create_user)
    token = admin.add_parser("create-token", help=N_("issue an API bearer token"))
    token.add_argument("username")
    token.add_argument("--name", default="api", help=N_("what the token is for"))
    token.set_defaults(handler=commands.create_token)
    second = admin.add_parser(
        "enroll-totp", help=N_("give an account a new one-time-code secret (authenticator app)")
    )
    second.add_argument("username")
    second.set_defaults(handler=commands.enroll_totp)
    sip = admin.add_parser(
        "set-sip-password", help=N_("set the password an agent's softphone logs in to SIP with")
    )
    sip.add_argument("username")
    sip.add_argument("--password-stdin", action="store_true", help=N_("read it from stdin"))
    sip.set_defaults(handler=commands.set_sip_password)


def _keys(top: Group) -> None:
    _group(top, "keys", N_("key-encryption keys of recordings")).add_parser(
        "rotate", help=N_("make a new key current and re-wrap every data key under it")
    ).set_defaults(handler=commands.keys_rotate)


def _recording(top: Group) -> None:
    rec = _group(top, "recording", N_("recordings"))
    store = rec.add_parser("store", help=N_("import an outside recording as a call"))
    store.add_argument("file", type=Path)
    store.add_argument("--call-id", required=True)
    store.add_argument("--agent", default="import")
    store.add_argument("--debtor")
    store.add_argument("--client", help=N_("the client bank; its own retention applies"))
    store.add_argument(
        "--recorded-at", type=datetime.fromisoformat, help=N_("ISO 8601; default now")
    )
    store.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help=N_("seconds to wait for both copies; then the uploader finishes (default 30)"),
    )
    fetch = rec.add_parser("fetch", help=N_("decrypt a recording to a WAV (or .ogg) file"))
    fetch.add_argument("id")
    fetch.add_argument("-o", "--output", type=Path, required=True)
    check = rec.add_parser("verify", help=N_("both copies present, hashes match, decrypt test"))
    which = check.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?")
    which.add_argument("--all", action="store_true")
    for parser in (store, fetch, check):
        parser.set_defaults(handler=commands.recording)


#: How a CSV's bytes are read; banks' CSVs are GBK as often as UTF-8 (dialer/sheets.py).
ENCODING_OPTION: dict[str, Any] = {
    "choices": ["auto", "utf-8", "gbk", "gb18030"],
    "default": "auto",
    "help": N_("a CSV's encoding (default: auto, UTF-8 or GBK detected)"),
}


def _dnc(top: Group) -> None:
    dnc = _group(top, "dnc", N_("do-not-call lists"))
    load = dnc.add_parser(
        "import", help=N_("add the numbers of a CSV or .xlsx file (number[,reason], 号码[,原因])")
    )
    load.add_argument("file", type=Path)
    load.add_argument("--encoding", **ENCODING_OPTION)
    check = dnc.add_parser("check", help=N_("is this number on a do-not-call list?"))
    check.add_argument("number")
    drop = dnc.add_parser("remove", help=N_("take a number off a list"))
    drop.add_argument("number")
    for parser in (load, check, drop):
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--client", help=N_("the list of one client's debts"))
        scope.add_argument("--debtor", help=N_("the list of one debtor"))
        parser.set_defaults(handler=commands.dnc)


def _debtors(top: Group) -> None:
    load = _group(top, "debtors", N_("debtors from the collection system")).add_parser(
        "import", help=N_("upsert the debtors of a CSV or JSON file: all rows or none")
    )
    load.add_argument("file", type=Path)
    load.add_argument(
        "--format", choices=["csv", "json", "xlsx"], help=N_("default: from the file name")
    )
    load.add_argument("--encoding", **ENCODING_OPTION)
    load.add_argument(
        "--errors", type=Path, help=N_("where the bad rows go (default: FILE.errors.csv)")
    )
    load.set_defaults(handler=commands.debtors_import)


def _policy(top: Group) -> None:
    ask = _group(top, "policy", N_("call policy")).add_parser(
        "check", help=N_("may this number be called at this moment, and if not when")
    )
    ask.add_argument("--number", required=True)
    ask.add_argument("--at", required=True, type=datetime.fromisoformat, help=N_("ISO 8601 time"))
    ask.add_argument("--debtor", help=N_("debtor id; default: the number itself"))
    ask.add_argument(
        "--preset", help=N_("cn-default, cn-workdays or us-regf; default: the setting")
    )
    ask.add_argument("--history", type=Path, help=N_('JSON list of {"at", "connected"} attempts'))
    ask.add_argument(
        "--json", action="store_true", help=N_("print JSON (the default is a sentence)")
    )
    ask.set_defaults(handler=commands.policy_check)


def _speech(top: Group) -> None:
    query = _group(top, "transcripts", N_("transcripts")).add_parser(
        "search", help=N_("search what was said, newest calls first")
    )
    query.add_argument("text", nargs="?", default="")
    query.add_argument("--agent")
    query.add_argument("--debtor")
    query.add_argument("--speaker", choices=["agent", "debtor"])
    query.add_argument("--from", dest="date_from", type=datetime.fromisoformat)
    query.add_argument("--to", dest="date_to", type=datetime.fromisoformat)
    query.add_argument("--limit", type=int, default=20)
    query.add_argument("--offset", type=int, default=0)
    query.add_argument("--json", action="store_true")
    query.set_defaults(handler=commands.search)
    speech = top.add_parser(
        "transcribe",
        help=N_("transcribe a recording (mono: agent; stereo: agent left, debtor right)"),
    )
    speech.add_argument("file", type=Path)
    speech.add_argument("--json", action="store_true", help=N_("print JSON instead of lines"))
    speech.add_argument("--language", help=N_("language code (zh, en ...); detected if not given"))
    speech.set_defaults(handler=commands.transcribe)


def _qa(top: Group) -> None:
    qa = _group(top, "qa", N_("QA rules"))
    check = qa.add_parser("check", help=N_("flag banned and missing wording in one call"))
    check.add_argument(
        "file",
        type=Path,
        help=N_("a WAV (mono: agent; stereo: agent left) or the JSON of dialguard transcribe"),
    )
    check.add_argument("--pack", help=N_("cn-collections, en-collections or a YAML file"))
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=commands.qa_check)
    measure = qa.add_parser(
        "eval", help=N_("precision and recall per category on a labelled corpus")
    )
    measure.add_argument(
        "dir",
        type=Path,
        help=N_("labels.yaml with transcript JSON files or recordings (transcribed first)"),
    )
    measure.add_argument("--pack", required=True)
    measure.add_argument("--json", action="store_true")
    measure.add_argument(
        "--semantic",
        action="store_true",
        help=N_(
            "also judge by meaning (the pack's example sets): rules alone, then rules+semantic"
        ),
    )
    measure.add_argument(
        "--candidate",
        help=N_(
            "a stored pack version (uploaded:ID) to compare side by side with --pack "
            "(which may then be 'active' or a ref too), before activating it"
        ),
    )
    measure.set_defaults(handler=commands.qa_eval)
    tune = qa.add_parser(
        "calibrate", help=N_("per-category semantic thresholds from a tuning sentence corpus")
    )
    tune.add_argument("file", type=Path, help=N_("the tuning split only, never the held-out one"))
    tune.add_argument("--pack", required=True)
    tune.add_argument(
        "--calls",
        type=Path,
        help=N_(
            "a labelled corpus of call transcripts: the agent's sentences of its calls "
            "without banned wording count as lawful"
        ),
    )
    tune.set_defaults(handler=commands.qa_calibrate)
    learn = _group(
        qa, "example", N_("examples of meaning-based flags, from reviewed flags")
    ).add_parser(
        "add", help=N_("a new pack version with reviewed flags' sentences as examples (not active)")
    )
    learn.add_argument("--flag", type=int, action="append", required=True, help=N_("repeatable"))
    learn.add_argument(
        "--as",
        dest="to",
        required=True,
        help=N_("the flags' category (confirmed) or benign (dismissed)"),
    )
    learn.add_argument("--base", help=N_("the version to add to (default: the active pack)"))
    learn.set_defaults(handler=commands.qa_example_add)


def _parser() -> argparse.ArgumentParser:
    # declared as the base class: its sub-command parsers are `_Parser`s too (type(self))
    parser: argparse.ArgumentParser = _Parser(
        prog="dialguard", description=N_("Telephony and call-recording server for collections.")
    )
    parser.add_argument("--version", action="version", version=f"dialguard {__version__}")
    top = parser.add_subparsers(dest="command", required=True)
    top.add_parser("up", help=N_("run the whole product until Ctrl-C or SIGTERM")).set_defaults(
        handler=commands.up
    )
    top.add_parser("doctor", help=N_("check this installation; exit 1 on a failure")).set_defaults(
        handler=commands.doctor
    )
    _group(top, "db", N_("database maintenance")).add_parser(
        "upgrade", help=N_("apply pending migrations")
    ).set_defaults(handler=commands.db_upgrade)
    verify = _group(top, "audit", N_("audit log")).add_parser(
        "verify",
        help=N_("detect any edited, removed or rewritten audit entry (hashes, MACs, WORM anchors)"),
    )
    verify.add_argument(
        "--offline", action="store_true", help=N_("without storage: hashes and MACs, no anchors")
    )
    verify.set_defaults(handler=commands.audit_verify)
    end = _group(top, "clients", N_("client banks")).add_parser(
        "end-contract",
        help=N_("the client's data is deleted as its retention ends; no extension after"),
    )
    end.add_argument("client")
    end.add_argument("--reason", required=True, help=N_("why, kept in the audit log"))
    end.set_defaults(handler=commands.clients_end_contract)
    for add in (_admin, _keys, _recording, _policy, _dnc, _debtors, _speech, _qa):
        add(top)
    add_edge_commands(top)
    return parser


#: Every file a `dialguard` process (and each child it starts) creates is its user's
#: alone: 0600 files, 0700 directories. The database holds SIP HA1 values and
#: transcripts, the spool recordings, DATA_DIR/keys the keys.
PRIVATE_UMASK = 0o077


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    with speaking(_early_language()):
        args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(_settings_error(exc), file=sys.stderr)
        return 2
    # What the operator reads follows their shell's locale, else the site's language.
    language = for_operator(os.environ, site_default(settings.language, settings.policy_preset))
    with speaking(language):
        try:
            status: int = args.handler(settings, args)
        except HintedError as exc:
            print(f"dialguard: {hinted(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
