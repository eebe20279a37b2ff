"""The dialer process: the B2BUA wired to the database, the call policy and the recording spool.

Everything a call needs besides SIP comes in through `CallSite`, built by
whoever starts the process from the one settings object: the database, the
policy, the site's key for hashing numbers, and the recording spool.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import column, select, table, update
from sqlalchemy.orm import Session, sessionmaker

from dialer.announcements import announcement_job, announcements_dir, keep_early_media
from dialer.caller_ids import Health, retired
from dialer.dnc import listed
from dialer.learned import add_status_event, recent_outcomes
from dialer.models import (
    CallAttempt,
    CallCommand,
    CallRequest,
    LiveCall,
    NumberStatusEvent,
    PauseEvent,
    SipAccount,
    SipRegistration,
)
from dialer.number_status import NumberStatus, Recheck, may_dial, status_from_sip
from dialer.numbers import mask, zone_for_number
from dialer.policy import PRESETS, Attempt, Policy, debtor_zone, decide, weekly_callbacks
from dialer.sip.b2bua import B2bua, B2buaConfig, CallEvent, CallRecord, Command, Ended, note_path
from dialer.sip.digest import Algorithm, Credential
from dialer.sip.front import Front, FrontConfig, WorkerTable
from dialer.sip.salvage import Leftover, salvage
from dialer.workdays import WorkdayCalendar, load_calendar
from recording.db.engine import as_utc
from recording.db.site_settings import POLICY_PRESET, read_setting
from recording.fields import open_text
from recording.keys import KeyWrapper
from recording.models import Recording
from recording.storage_rules import retention_for
from recording.store import CallInfo, spool_call

log = logging.getLogger(__name__)

HISTORY = timedelta(days=31)  # longer than any rule looks back (Reg F: 7 days; streaks: 5)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CallSite:
    sessions: sessionmaker[Session]
    policy: Policy
    site_tz: ZoneInfo
    calendar: WorkdayCalendar | None
    number_secret: bytes = field(repr=False)
    spool: Path
    keys: KeyWrapper = field(repr=False)
    retention_days: int
    # clients that require longer than retention_days (DIALGUARD_CLIENT_RETENTION)
    client_retention: Mapping[str, int] = field(default_factory=dict)
    clock: Callable[[], datetime] = _utcnow
    recheck: Recheck = field(default_factory=Recheck)
    caller_id_health: Health = field(default_factory=Health)


def number_key(secret: bytes, e164: str) -> str:
    """A keyed hash of a number: counts attempts per number without storing it."""
    return hmac.new(secret, e164.encode(), hashlib.sha256).hexdigest()


def load_or_create_secret(path: Path) -> bytes:
    """32 random bytes kept in a 0600 file; every dialer of a site must share it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        return secret


# --- SIP accounts ------------------------------------------------------------------------------


def set_sip_password(
    session: Session, username: str, realm: str, password: str, now: datetime
) -> None:
    """Store an agent's softphone credentials as HA1 digests (MD5 and SHA-256)."""
    cred = Credential.from_password(username, realm, password, (Algorithm.MD5, Algorithm.SHA256))
    row = session.get(SipAccount, username) or SipAccount(username=username)
    row.realm = realm
    row.ha1_md5 = cred.ha1[Algorithm.MD5]
    row.ha1_sha256 = cred.ha1[Algorithm.SHA256]
    row.disabled = False
    row.updated_at = now
    session.add(row)
    session.commit()


def credential_lookup(sessions: sessionmaker[Session]) -> Callable[[str], Credential | None]:
    def lookup(username: str) -> Credential | None:
        with sessions() as session:
            row = session.get(SipAccount, username)
            if row is None or row.disabled:
                return None
            return Credential(
                username,
                row.realm,
                {Algorithm.MD5: row.ha1_md5, Algorithm.SHA256: row.ha1_sha256},
            )

    return lookup


# --- the decision before the trunk ------------------------------------------------------------


def history(
    session: Session, key: str, since: datetime, debtor_id: str | None = None
) -> list[Attempt]:
    """Calls placed to this number (or this debtor) since `since`, as the policy counts them.

    A softphone dials a number, not a debtor, so without a debtor the number
    stands in for one. With one (click-to-call), the debtor's own calls count
    for its caps on any of its numbers, and so do debtor-less calls to this
    number; another debtor's calls on the same number (a shared family phone)
    count only for the per-number cap. Returned attempts name the debtor as
    `debtor_id or key` for ours and "other" for the rest.
    """
    mine = debtor_id or key
    scope = CallAttempt.number_key == key
    if debtor_id is not None:
        scope = scope | (CallAttempt.debtor_id == debtor_id)
    rows = session.scalars(
        select(CallAttempt).where(
            scope, CallAttempt.placed.is_(True), CallAttempt.started_at >= since
        )
    )
    attempts = []
    for row in rows:
        ours = debtor_id is None or row.debtor_id in (debtor_id, None)
        attempts.append(
            Attempt(
                at=as_utc(row.started_at),
                debtor_id=mine if ours else "other",
                number=row.number_key,
                connected=row.answered,
                conversation=row.answered,
            )
        )
    return attempts


def site_policy(
    session: Session, default: Policy, calendar: WorkdayCalendar | None
) -> tuple[Policy, WorkdayCalendar | None]:
    """The preset an admin chose in the console, else `default` (DIALGUARD_POLICY_PRESET).

    Read before every call, so a change applies to the next call without a
    restart; a working-days preset brings the calendar along if the site had none.
    """
    chosen = PRESETS.get(read_setting(session, POLICY_PRESET) or "", default)
    if chosen.working_days_only and calendar is None:
        calendar = load_calendar()
    return chosen, calendar


@dataclass(frozen=True)
class DebtorFacts:
    """Who a call is for: the debtor a click-to-call names, or who holds a dialed number.

    `holders` lists every (client, account id) whose record holds the number
    of a call dialed from a keypad; each one's do-not-call lists apply. The
    other fields are set when exactly one debtor is meant.
    """

    debtor_id: str | None = None
    client_id: str | None = None
    zone: ZoneInfo | None = None
    callback_windows: tuple[dict[str, object], ...] = ()
    holders: tuple[tuple[str, str], ...] = ()


# The debtor records (dialer/debtors/records.py) are kept in step with the collection system;
# the dialer only reads who holds a number, through these plain handles.
_DEBTORS = table(
    "debtors",
    column("id"),
    column("client_id"),
    column("external_id"),
    column("timezone"),
    column("callback_windows_json"),
)
_DEBTOR_NUMBERS = table("debtor_numbers", column("debtor_id"), column("number_key"))


def _zone(name: str | None, where: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown debtor time zone on %s; using the number's", where)
        return None


def number_holders(session: Session, key: str) -> DebtorFacts:
    """The debtors whose records hold this number: a keypad call knows only the number.

    One holder: the call is that debtor's (zone, call-back windows, caps).
    Several (a family phone): no one debtor is meant, but every holder's
    do-not-call lists still apply.
    """
    rows = session.execute(
        select(
            _DEBTORS.c.client_id,
            _DEBTORS.c.external_id,
            _DEBTORS.c.timezone,
            _DEBTORS.c.callback_windows_json,
        )
        .join(_DEBTOR_NUMBERS, _DEBTOR_NUMBERS.c.debtor_id == _DEBTORS.c.id)
        .where(_DEBTOR_NUMBERS.c.number_key == key)
        .order_by(_DEBTORS.c.client_id, _DEBTORS.c.external_id)
    ).all()
    holders = tuple((row.client_id, row.external_id) for row in rows)
    if len(rows) != 1:
        return DebtorFacts(holders=holders)
    [row] = rows
    windows = tuple(json.loads(row.callback_windows_json or "[]"))
    zone = _zone(row.timezone, f"debtor {row.client_id}/{row.external_id}")
    return DebtorFacts(row.external_id, row.client_id, zone, windows, holders)


def debtor_facts(session: Session, request_id: int | None, key: str | None = None) -> DebtorFacts:
    """The debtor a click-to-call is for, else (given the number's key) who holds the number."""
    request = session.get(CallRequest, request_id) if request_id is not None else None
    if request is None or request.debtor_id is None:
        return number_holders(session, key) if key is not None else DebtorFacts()
    zone = _zone(request.debtor_tz, f"request {request_id}")
    windows = json.loads(request.callback_windows_json or "[]")
    return DebtorFacts(request.debtor_id, request.client_id, zone, tuple(windows))


DO_NOT_CALL = "do_not_call"
NUMBER_STATUS = "number_status"


@dataclass(frozen=True)
class NumberDecision:
    """Whether a number may be dialed at one moment; `next_at` is when this refusal ends.

    `next_at` is None when allowed, or when nothing but a person ends the
    refusal (a do-not-call list).
    """

    allowed: bool
    rule: str
    reason: str
    next_at: datetime | None


def decide_number(site: CallSite, e164: str, facts: DebtorFacts, at: datetime) -> NumberDecision:
    """The dialer's decision before any INVITE leaves, in the order the checks apply.

    The do-not-call lists (global, the debtor's client's, the debtor's own),
    the number's learned status, then the site's call policy over the
    number's and the debtor's history, in the debtor's zone with their agreed
    call-back windows. The worker asks it for now; the agent's page asks it
    for later moments too, to say from when a call will be allowed.
    """
    key = number_key(site.number_secret, e164)
    with site.sessions() as session:
        for client_id, debtor_id in facts.holders or ((facts.client_id, facts.debtor_id),):
            entry = listed(session, key, client_id, debtor_id)
            if entry is None:
                continue
            whose = {
                "client": f"of client {client_id}",
                "debtor": "of this debtor" if facts.debtor_id else f"of debtor {debtor_id}",
            }.get(entry.scope, "for everyone")
            return NumberDecision(
                False,
                DO_NOT_CALL,
                f"{entry.number_masked} is on the do-not-call list {whose} ({entry.reason}); "
                "it is not called.",
                None,
            )
        learned = latest_status(session, key)
        if learned is not None:
            ok, why, due = may_dial(
                NumberStatus(learned.status), as_utc(learned.at), at, site.recheck
            )
            if not ok:
                return NumberDecision(False, NUMBER_STATUS, f"{why} ({learned.evidence})", due)
        attempts = history(session, key, at - HISTORY, facts.debtor_id)
        policy, calendar = site_policy(session, site.policy, site.calendar)
    zone = debtor_zone(facts.zone, zone_for_number(e164), site.site_tz)
    decision = decide(
        policy,
        at,
        zone,
        debtor_id=facts.debtor_id or key,
        number=key,
        attempts=attempts,
        callbacks=weekly_callbacks(facts.callback_windows, zone, at),
        calendar=calendar,
    )
    return NumberDecision(
        decision.allowed, decision.rule.value, decision.reason, decision.next_allowed_at
    )


def policy_decider(site: CallSite) -> Callable[[str, int | None], tuple[bool, str, str]]:
    def decide_call(e164: str, request_id: int | None = None) -> tuple[bool, str, str]:
        with site.sessions() as session:
            facts = debtor_facts(session, request_id, number_key(site.number_secret, e164))
        decision = decide_number(site, e164, facts, site.clock())
        return decision.allowed, decision.rule, decision.reason

    return decide_call


# --- after the call ----------------------------------------------------------------------------


def latest_status(session: Session, key: str) -> NumberStatusEvent | None:
    return session.scalar(
        select(NumberStatusEvent)
        .where(NumberStatusEvent.number_key == key)
        .order_by(NumberStatusEvent.at.desc(), NumberStatusEvent.id.desc())
        .limit(1)
    )


def learn_status(session: Session, key: str, record: CallRecord, now: datetime) -> None:
    """Store what a placed call showed about its number (append-only: the history is evidence).

    Only calls that reached the carrier teach anything: our own refusals
    (policy, do-not-call, a malformed number) say nothing about the number.
    """
    if record.caller_id is None:
        return
    status = status_from_sip(
        record.sip_status,
        record.sip_reason,
        answered=record.answered,
        talk_s=record.duration_s,
        agent_cancelled=record.ended_by is Ended.AGENT and not record.answered,
    )
    if status is None:
        return
    evidence = f"SIP {record.sip_status} {record.sip_reason}".strip()
    if record.answered:
        evidence = f"answered, {record.duration_s:.0f} s of talk"
    add_status_event(session, key, status, now, record.call_id, evidence)


def caller_id_check(site: CallSite) -> Callable[[str], bool]:
    """Whether a caller ID may present the next call; a retirement is logged once as an alert."""
    alerted: set[str] = set()

    def usable(cid: str) -> bool:
        with site.sessions() as session:  # SIP refusals and "blocked" announcements alike
            recent = recent_outcomes(session, cid, site.caller_id_health.run)
        if not retired(recent, site.clock(), site.caller_id_health):
            alerted.discard(cid)
            return True
        if cid not in alerted:
            alerted.add(cid)
            log.error(
                "ALERT caller ID %s left the rotation: its last %d calls were refused "
                "(403/603/607/608 or a 'blocked' announcement); it is tried again after %s",
                cid,
                site.caller_id_health.run,
                site.caller_id_health.cooloff,
                extra={"event": "caller_id_retired"},
            )
        return False

    return usable


def store_recording(
    site: CallSite,
    wav: Path,
    call_id: str,
    agent: str,
    started_at: datetime,
    pauses: tuple[tuple[float, float], ...] = (),
    debtor: DebtorFacts | None = None,
) -> str:
    """Encode, encrypt and spool a call's stereo WAV; the uploader takes it from there."""
    info = CallInfo(
        call_id=call_id,
        agent=agent,
        recorded_at=started_at,
        pauses=pauses,
        debtor_id=debtor.debtor_id if debtor else None,
        client_id=debtor.client_id if debtor else None,
    )
    days = retention_for(info.client_id, site.retention_days, site.client_retention)
    row = spool_call(site.sessions, site.spool, site.keys, wav, info, days, site.clock())
    return row.id


def finish_call(site: CallSite, record: CallRecord) -> None:
    """Spool the recording, then book the attempt; a failure keeps the WAV for salvage."""
    started = datetime.fromtimestamp(record.started_at, UTC)
    key = number_key(site.number_secret, record.e164)
    with site.sessions() as session:
        debtor = debtor_facts(session, record.request_id, key)
    recording_id = None
    if record.recording is not None:
        recording_id = store_recording(
            site, record.recording, record.call_id, record.agent, started, record.pauses, debtor
        )
        record.recording.unlink(missing_ok=True)
        note_path(record.recording).unlink(missing_ok=True)
    early = keep_early_media(record, announcements_dir(site.spool))  # a failed call's announcement
    with site.sessions() as session:
        learn_status(session, key, record, site.clock())
        if early is not None:
            session.add(announcement_job(record, key, early, site.clock()))
        _close_request(session, record, site.clock())
        _call_ended(session, record.call_id, site.clock())
        session.add(
            CallAttempt(
                call_id=record.call_id,
                sip_call_id=record.sip_call_id[:200],
                agent=record.agent,
                number_key=key,
                number_masked=record.number,
                debtor_id=debtor.debtor_id,
                holds_json=json.dumps([list(span) for span in record.holds]),
                started_at=started,
                placed=record.caller_id is not None,
                answered=record.answered,
                duration_s=record.duration_s,
                ring_s=record.ring_s,
                sip_status=record.sip_status,
                sip_reason=record.sip_reason[:200],
                rule=record.rule,
                ended_by=record.ended_by.value,
                caller_id=record.caller_id,
                recording_id=recording_id,
            )
        )
        session.commit()
    log.info(
        "call booked: %s %s",
        record.sip_status,
        "recorded" if recording_id else "no recording",
        extra={"call_id": record.call_id, "number": record.number},
    )


# --- running calls: commands from the API, pause events for the audit log -----------------------


def command_reader(sessions: sessionmaker[Session]) -> Callable[[Sequence[str]], list[Command]]:
    """The queued commands (pause, resume) for the calls this worker carries, oldest first."""

    def read(call_ids: Sequence[str]) -> list[Command]:
        with sessions() as session:
            rows = session.scalars(
                select(CallCommand)
                .where(CallCommand.status == "queued", CallCommand.call_id.in_(list(call_ids)))
                .order_by(CallCommand.id)
            )
            return [Command(r.id, r.call_id, r.action, r.requested_by) for r in rows]

    return read


def event_writer(sessions: sessionmaker[Session], worker: int) -> Callable[[CallEvent], None]:
    """Keeps `live_calls` current and writes each pause and resume for the audit log.

    A pause event and its command's outcome land in one commit, so an API
    caller never sees a command done whose pause is not on record.
    """

    def write(event: CallEvent) -> None:
        at = datetime.fromtimestamp(event.at, UTC)
        with sessions() as session:
            if event.kind == "started":
                session.merge(
                    LiveCall(call_id=event.call_id, agent=event.agent, worker=worker,
                             started_at=at, paused=False)
                )  # fmt: skip
            elif event.kind in ("pause", "resume"):
                live = session.get(LiveCall, event.call_id)
                if live is not None:
                    live.paused = event.kind == "pause"
                session.add(
                    PauseEvent(call_id=event.call_id, action=event.kind, actor=event.actor[:64],
                               source=event.source, at=at, offset_s=event.offset_s,
                               command_id=event.command_id)
                )  # fmt: skip
                _mark_command(session, event.command_id, "done", None, at)
            elif event.kind == "refused":
                _mark_command(session, event.command_id, "failed", event.detail, at)
            session.commit()

    return write


def _mark_command(
    session: Session, command_id: int | None, status: str, detail: str | None, now: datetime
) -> None:
    if command_id is None:
        return
    session.execute(
        update(CallCommand)
        .where(CallCommand.id == command_id, CallCommand.status == "queued")
        .values(status=status, detail=(detail or None) and detail[:200], done_at=now)
    )


def _call_ended(session: Session, call_id: str, now: datetime) -> None:
    """The call is no longer live; a command it never got to is failed, not left queued."""
    live = session.get(LiveCall, call_id)
    if live is not None:
        session.delete(live)
    session.execute(
        update(CallCommand)
        .where(CallCommand.call_id == call_id, CallCommand.status == "queued")
        .values(status="failed", detail="the call ended first", done_at=now)
    )


def forget_live_calls(sessions: sessionmaker[Session], worker: int, now: datetime) -> None:
    """At a worker's start: the calls its crashed predecessor carried are not live any more."""
    with sessions() as session:
        for live in session.scalars(select(LiveCall).where(LiveCall.worker == worker)):
            _call_ended(session, live.call_id, now)
        session.commit()


# --- click-to-call ----------------------------------------------------------------------------


def registrar(sessions: sessionmaker[Session]) -> Callable[[str, str | None, int], None]:
    """The front's REGISTER handler: where each agent's softphone can be rung."""

    def register(username: str, contact: str | None, seconds: int) -> None:
        now = datetime.now(UTC)
        with sessions() as session:
            row = session.get(SipRegistration, username)
            if contact is None:
                if row is not None:
                    session.delete(row)
            else:
                row = row or SipRegistration(username=username)
                row.contact, row.updated_at = contact[:255], now
                row.expires_at = now + timedelta(seconds=seconds)
                session.add(row)
            session.commit()

    return register


def request_claimer(site: CallSite, worker: int) -> Callable[[], tuple[int, str, str, str] | None]:
    """Takes the oldest queued click-to-call, if no other worker took it first."""

    def claim() -> tuple[int, str, str, str] | None:
        now = site.clock()
        with site.sessions() as session:
            request = session.scalar(
                select(CallRequest)
                .where(CallRequest.status == "queued")
                .order_by(CallRequest.id)
                .limit(1)
            )
            if request is None:
                return None
            taken = session.execute(
                update(CallRequest)
                .where(CallRequest.id == request.id, CallRequest.status == "queued")
                .values(status="claimed", worker=worker)
            )
            session.commit()
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another worker was quicker
            binding = session.get(SipRegistration, request.agent)
            if binding is None or as_utc(binding.expires_at) < now:
                request.status, request.finished_at = "failed", now
                request.detail = "the agent's softphone is not registered"
                session.commit()
                return None
            e164 = open_text(site.keys, request.number_sealed)
            return request.id, request.agent, binding.contact, e164

    return claim


def _close_request(session: Session, record: CallRecord, now: datetime) -> None:
    if record.request_id is None:
        return
    request = session.get(CallRequest, record.request_id)
    if request is None:
        return
    request.status = "done" if record.caller_id is not None else "failed"
    request.call_id, request.sip_status, request.finished_at = (
        record.call_id,
        record.sip_status,
        now,
    )
    request.detail = (f"{record.rule}: " if record.rule else "") + record.sip_reason[:250]


def _store_leftover(site: CallSite) -> Callable[[Leftover], None]:
    def store(leftover: Leftover) -> None:
        with site.sessions() as session:
            if session.scalar(select(Recording.id).where(Recording.call_id == leftover.call_id)):
                return  # spooled before the crash; only the local copy was left
        started = datetime.fromtimestamp(leftover.started_at, UTC)
        recording_id = store_recording(
            site, leftover.recording, leftover.call_id, leftover.agent, started
        )
        with site.sessions() as session:
            if session.scalar(
                select(CallAttempt.id).where(CallAttempt.call_id == leftover.call_id)
            ):
                return
            session.add(
                CallAttempt(
                    call_id=leftover.call_id,
                    sip_call_id="",
                    agent=leftover.agent,
                    number_key=leftover.number_key,
                    number_masked=leftover.number_masked,
                    started_at=started,
                    placed=True,
                    answered=True,
                    duration_s=0.0,
                    sip_status=0,
                    sip_reason="the dialer stopped mid-call; ended at its restart",
                    ended_by="dialguard",
                    recording_id=recording_id,
                )
            )
            session.commit()

    return store


def run(
    config: B2buaConfig,
    site: CallSite,
    stop: threading.Event,
    on_load: Callable[[int], None] | None = None,
    next_request: Callable[[], tuple[int, str, str, str] | None] | None = None,
    worker: int = 0,
) -> None:
    """Salvage what a killed dialer left, then bridge calls until `stop` is set.

    `worker` names this dialer in `live_calls`; each running dialer of a site
    needs its own.
    """
    config.recording_dir.mkdir(parents=True, exist_ok=True)
    saved = salvage(config.recording_dir, _store_leftover(site))
    if saved:
        log.warning("stored %d recording(s) left by an interrupted dialer", saved)
    for early in config.recording_dir.glob("*-early.wav"):  # a failed call never booked
        early.unlink(missing_ok=True)
    forget_live_calls(site.sessions, worker, site.clock())

    def finished(record: CallRecord) -> None:
        try:
            finish_call(site, record)
        except Exception:
            log.exception("booking the call failed", extra={"call_id": record.call_id})
            try:  # the call is over either way: no command may wait for it
                with site.sessions() as session:
                    _call_ended(session, record.call_id, site.clock())
                    session.commit()
            except Exception:
                log.exception("clearing the ended call failed", extra={"call_id": record.call_id})

    def note_fields(e164: str) -> dict[str, str]:
        return {"number_key": number_key(site.number_secret, e164), "number_masked": mask(e164)}

    b2b = B2bua(
        config,
        credential_lookup(site.sessions),
        policy_decider(site),
        finished,
        on_load=on_load,
        note_fields=note_fields,
        caller_id_usable=caller_id_check(site),
        next_request=next_request,
        commands=command_reader(site.sessions),
        on_event=event_writer(site.sessions, worker),
    )
    log.info("dialer bridging calls on %s:%d", config.host, config.port)
    b2b.run(stop)


def free_sip_port(host: str, attempts: int = 20) -> int:
    """A port free for both UDP and TCP, as pjsua2 binds both on one number."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
        return port
    raise OSError(f"no port free for both UDP and TCP on {host}")


def run_worker(
    config: B2buaConfig,
    site: CallSite,
    stop: threading.Event,
    index: int,
    ports: MutableSequence[int],
    legs: MutableSequence[int],
) -> None:
    """One worker of the pool behind the front: its own port, its own calls folder.

    The port goes into `ports[index]` once pjsua2 listens, the number of live
    legs into `legs[index]` as it changes; the front reads both.
    """
    port = free_sip_port(config.host)
    mine = replace(config, port=port, recording_dir=config.recording_dir / f"worker-{index}")

    def report(n: int) -> None:
        legs[index] = n
        ports[index] = port  # first report: pjsua2 is up and listening

    try:
        run(
            mine,
            site,
            stop,
            on_load=report,
            next_request=request_claimer(site, index),
            worker=index,
        )
    finally:
        ports[index] = 0
        legs[index] = 0


def run_front(
    config: FrontConfig,
    sessions: sessionmaker[Session],
    ports: Sequence[int],
    legs: Sequence[int],
    stop: threading.Event,
) -> None:
    front = Front(
        config, WorkerTable(ports, legs), credential_lookup(sessions), register=registrar(sessions)
    )
    front.serve(stop)
