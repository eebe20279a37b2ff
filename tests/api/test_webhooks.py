"""Call outcomes pushed to the agency's webhook: signed, retried, delivered once, on both
databases.

Calls are booked by the dialer's own `finish_call` (a real recording spooled
through ffmpeg and the key ring), scored by the real QA store, and delivered
over HTTP to a receiver on 127.0.0.1 that answers as told: the one fake, since
the collection system cannot run here. The clock is injected, so a day of
backoff passes without sleeping.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.outcomes import webhooks
from api.outcomes.payload import (
    Decision,
    RetryPolicy,
    Verdict,
    decision,
    next_try,
    parse_retry_after,
    receiver_label,
    signature_header,
    verdict,
    verify,
)
from api.outcomes.webhooks import (
    DeliveryStatus,
    Receiver,
    WebhookDelivery,
    deliver_due,
    make_client,
    queue_new,
    run_webhooks,
    start_cursors,
)
from api.settings import Settings
from dialer.booking import finish_call
from dialer.calls import CallRecord, Ended
from dialer.debtors import DebtorIn, Sealer, upsert, validate_row
from dialer.models import CallAttempt
from dialer.numbers import mask
from dialer.policy import preset
from dialer.site import CallSite
from qa_scoring.models import QaResult
from qa_scoring.store import score_transcript
from recording.db.engine import as_utc, make_engine, session_factory
from recording.keys import FileKeyRing
from recording.models import Recording
from tests.audio import tone, write_wav
from tests.factories import T0
from tests.helpers import free_port
from transcribe.result import Segment, Speaker, Transcript, Word
from transcribe.store import save_transcript

E164 = "+8613800138000"
NATIONAL = "13800138000"
SECRET = b"whsec-0123456789abcdef"


# --- what a call leaves behind ---------------------------------------------------------------


@dataclass
class Desk:
    """The dialer's site and the debtor records, on one test database."""

    site: CallSite
    sealer: Sealer

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.site.sessions


def make_desk(engine: Engine, tmp_path: Path) -> Desk:
    keys = FileKeyRing(tmp_path / "keys" / "kek.json")
    secret = os.urandom(32)
    site = CallSite(
        sessions=session_factory(engine),
        policy=preset("cn-default"),
        site_tz=ZoneInfo("Asia/Shanghai"),
        calendar=None,
        number_secret=secret,
        spool=tmp_path / "spool",
        keys=keys,
        retention_days=730,
        clock=lambda: T0,
    )
    return Desk(site, Sealer(keys, secret))


@pytest.fixture
def desk(engine: Engine, tmp_path: Path) -> Desk:
    return make_desk(engine, tmp_path)


def add_debtor(
    desk: Desk, client: str, external_id: str, numbers: str = f"debtor:{NATIONAL}"
) -> None:
    checked = validate_row(
        {
            "client": client,
            "external_id": external_id,
            "name": "王小明",
            "stage": "early",
            "timezone": "Asia/Shanghai",
            "numbers": numbers,
        },
        "CN",
    )
    assert isinstance(checked, DebtorIn), checked
    with desk.sessions() as session:
        upsert(session, [checked], desk.sealer, T0)
        session.commit()


def book(
    desk: Desk,
    call_id: str,
    e164: str = E164,
    agent: str = "agent1",
    *,
    answered: bool = True,
    rule: str | None = None,
    tmp: Path | None = None,
    at: datetime = T0,
) -> int:
    """Book one attempt as the dialer does when both legs are gone; its id."""
    recording = None
    if answered:
        assert tmp is not None
        recording = write_wav(tmp / f"{call_id}.wav", [tone(1.0, 440), tone(1.0, 660)])
    placed = rule is None
    record = CallRecord(
        call_id=call_id,
        sip_call_id=f"{call_id}@softphone",
        agent=agent,
        number=mask(e164),
        caller_id="+861058000000" if placed else None,
        started_at=at.timestamp(),
        answered=answered,
        duration_s=1.0 if answered else 0.0,
        ring_s=4.5 if placed else 0.0,
        sip_status=200 if answered else (403 if rule else 486),
        sip_reason="OK" if answered else ("outside the calling window" if rule else "Busy Here"),
        ended_by=Ended.AGENT if placed else Ended.DIALGUARD,
        rule=rule,
        recording=recording,
        e164=e164,
    )
    finish_call(desk.site, record)
    with desk.sessions() as session:
        attempt_id = session.scalar(select(CallAttempt.id).where(CallAttempt.call_id == call_id))
    assert attempt_id is not None
    return attempt_id


def score(desk: Desk, attempt_id: int) -> QaResult:
    """Transcribe (as stored rows) and score the attempt's recording with the real pack."""
    with desk.sessions() as session:
        attempt = session.get(CallAttempt, attempt_id)
        assert attempt is not None and attempt.recording_id is not None
        lines = [(Speaker.AGENT, 0.0, "您好，我是某某银行的催收专员，本次通话将被录音。")]
        segments = tuple(
            Segment(s, s + 2.0, who, text, 0.9, (Word(s, s + 0.5, text, 0.9),))
            for who, s, text in lines
        )
        transcript = save_transcript(
            session, attempt.recording_id, Transcript("zh", 2.0, "base", segments), "t", T0
        )
        return score_transcript(session, transcript.id, "cn-collections", T0)


# --- the receiver --------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class FakeReceiver:
    """The collection system's endpoint: answers each POST with the next scripted status."""

    script: list[int] = field(default_factory=list)
    otherwise: int = 200
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = self.script.pop(0) if self.script else self.otherwise
            self.got.append(Received(headers, body, status))
            return status

    def accepted(self) -> list[Received]:
        return [r for r in self.got if 200 <= r.answered < 300]


@contextlib.contextmanager
def receiving(receiver: FakeReceiver, path: str = "/hooks/dialguard") -> Iterator[FakeReceiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            if status in (429, 503):
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def deliveries(sessions: sessionmaker[Session]) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def signed_ok(received: Received, secret: bytes) -> bool:
    """The receiver's check, as docs/http-api.md shows it: HMAC-SHA256 over "t.body", compared
    in constant time."""
    parts = dict(p.split("=", 1) for p in received.headers["dialguard-signature"].split(","))
    mac = hmac.new(secret, parts["t"].encode() + b"." + received.body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), parts["v1"])


def no_full_number(body: bytes) -> bool:
    text = body.decode()
    return all(form not in text for form in (E164, E164[1:], NATIONAL, "138 0013 8000"))


# --- end to end through HTTP -----------------------------------------------------------------


def test_an_outcome_arrives_once_after_two_503s_signed_and_masked(
    desk: Desk, tmp_path: Path
) -> None:
    start_cursors(desk.sessions)  # the webhook is configured, then calls are made
    add_debtor(desk, "bank-a", "ACC-1")
    attempt_id = book(desk, "c0ffee01", tmp=tmp_path)
    clock = Clock(T0)
    policy = RetryPolicy()
    with receiving(FakeReceiver(script=[503, 503])) as rx, make_client() as client:
        target = Receiver(rx.url, SECRET)
        assert queue_new(desk.sessions, clock) == 1

        def send() -> int:
            return deliver_due(desk.sessions, client, target, clock, lambda: 0.0, policy)

        assert send() == 0
        [row] = deliveries(desk.sessions)
        assert (row.status, row.tries, row.last_status) == (DeliveryStatus.PENDING, 1, 503)
        # Retry-After: 1 is shorter than the first backoff step: the backoff stands.
        assert as_utc(row.next_try_at) == T0 + policy.first
        assert send() == 0 and len(rx.got) == 1  # not due yet: nothing sent

        clock.at = as_utc(row.next_try_at)
        assert send() == 0
        [row] = deliveries(desk.sessions)
        assert as_utc(row.next_try_at) == clock.at + 2 * policy.first  # exponential

        clock.at = as_utc(row.next_try_at)
        assert send() == 1
        for later in (timedelta(minutes=5), timedelta(days=2)):
            clock.at += later
            assert queue_new(desk.sessions, clock) == 0
            assert send() == 0
    [row] = deliveries(desk.sessions)
    assert (row.status, row.tries, row.last_status) == (DeliveryStatus.DELIVERED, 3, 200)
    assert [r.answered for r in rx.got] == [503, 503, 200]
    [accepted] = rx.accepted()
    assert {r.headers["dialguard-delivery"] for r in rx.got} == {row.delivery_id}
    assert {r.body for r in rx.got} == {accepted.body}  # the same bytes every time
    assert all(signed_ok(r, SECRET) for r in rx.got)
    assert not signed_ok(accepted, b"another secret entirely")
    assert accepted.headers["dialguard-event"] == "call.attempted"
    assert accepted.headers["content-type"] == "application/json"
    assert no_full_number(accepted.body)

    payload = json.loads(accepted.body)
    assert payload["id"] == row.delivery_id and payload["event"] == "call.attempted"
    outcome = payload["outcome"]
    with desk.sessions() as session:
        recording_id = session.scalar(select(Recording.id).where(Recording.call_id == "c0ffee01"))
    assert recording_id is not None
    assert outcome == {
        "attempt_id": attempt_id,
        "call_id": "c0ffee01",
        "agent": "agent1",
        "number": "+86138****8000",
        "number_role": "debtor",
        "debtor_id": "ACC-1",
        "client": "bank-a",
        "started_at": "2026-11-24T09:00:00Z",
        "decision": "placed",
        "rule": None,
        "caller_id": "+861058000000",
        "sip_status": 200,
        "sip_reason": "OK",
        "answered": True,
        "ring_s": 4.5,
        "talk_s": 1.0,
        "ended_by": "agent",
        "recording_id": recording_id,
        "qa": None,
    }


def test_a_scored_call_is_pushed_again_with_its_score(desk: Desk, tmp_path: Path) -> None:
    start_cursors(desk.sessions)
    attempt_id = book(desk, "c0ffee02", tmp=tmp_path)
    clock = Clock(T0)
    with receiving(FakeReceiver()) as rx, make_client() as client:
        target = Receiver(rx.url, SECRET)
        queue_new(desk.sessions, clock)
        assert deliver_due(desk.sessions, client, target, clock) == 1
        result = score(desk, attempt_id)
        assert result.score is not None
        clock.at += timedelta(minutes=3)
        assert queue_new(desk.sessions, clock) == 1
        assert queue_new(desk.sessions, clock) == 0
        assert deliver_due(desk.sessions, client, target, clock) == 1
    first, second = (json.loads(r.body) for r in rx.accepted())
    assert [first["event"], second["event"]] == ["call.attempted", "call.scored"]
    assert second["sequence"] > first["sequence"]
    assert first["id"] != second["id"]
    assert first["outcome"]["qa"] is None
    assert second["outcome"]["qa"] == {
        "result_id": result.id,
        "score": result.score,
        "pack": "cn-collections",
        "pack_version": result.pack_version,
        "scored_at": "2026-11-24T09:00:00Z",
    }
    assert {k: v for k, v in second["outcome"].items() if k != "qa"} == {
        k: v for k, v in first["outcome"].items() if k != "qa"
    }


def test_a_refused_attempt_is_pushed_with_its_rule(desk: Desk, tmp_path: Path) -> None:
    start_cursors(desk.sessions)
    book(desk, "c0ffee03", answered=False, rule="window")
    with receiving(FakeReceiver()) as rx, make_client() as client:
        queue_new(desk.sessions)
        assert deliver_due(desk.sessions, client, Receiver(rx.url, SECRET)) == 1
    outcome = json.loads(rx.got[0].body)["outcome"]
    assert (outcome["decision"], outcome["rule"], outcome["sip_status"]) == (
        "refused",
        "window",
        403,
    )
    assert (outcome["recording_id"], outcome["caller_id"], outcome["answered"]) == (
        None,
        None,
        False,
    )
    assert (outcome["debtor_id"], outcome["client"]) == (None, None)  # no debtor has the number


def test_a_400_fails_for_good_after_one_try_and_is_logged_without_secrets(
    desk: Desk, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start_cursors(desk.sessions)
    book(desk, "c0ffee04", answered=False, rule="window")
    clock = Clock(T0)
    with (
        receiving(FakeReceiver(otherwise=400), "/hooks/tok-SECRETPATH?key=abc") as rx,
        make_client() as client,
        caplog.at_level(logging.INFO, logger="api.outcomes.webhooks"),
    ):
        target = Receiver(rx.url, SECRET)
        queue_new(desk.sessions, clock)
        for step in range(5):
            clock.at = T0 + timedelta(hours=step * 6)
            assert deliver_due(desk.sessions, client, target, clock) == 0
    assert len(rx.got) == 1
    [row] = deliveries(desk.sessions)
    assert (row.status, row.tries, row.last_status) == (DeliveryStatus.FAILED, 1, 400)
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "HTTP 400" in error.getMessage() and "not retried" in error.getMessage()
    logged = caplog.text
    assert "SECRETPATH" not in logged and SECRET.decode() not in logged


def test_retries_stop_24_hours_after_the_event(desk: Desk, tmp_path: Path) -> None:
    """A receiver that never recovers: tries back off to an hour apart, then the event fails."""
    start_cursors(desk.sessions)
    book(desk, "c0ffee05", answered=False, rule="window")
    clock = Clock(T0)
    policy = RetryPolicy()
    with receiving(FakeReceiver(otherwise=503)) as rx, make_client() as client:
        target = Receiver(rx.url, SECRET)
        queue_new(desk.sessions, clock)
        while True:
            deliver_due(desk.sessions, client, target, clock, lambda: 0.5, policy)
            [row] = deliveries(desk.sessions)
            if row.status != DeliveryStatus.PENDING:
                break
            gap = as_utc(row.next_try_at) - clock.at
            assert gap <= policy.max_delay
            clock.at = as_utc(row.next_try_at)
    assert row.status == DeliveryStatus.FAILED
    assert len(rx.got) == row.tries
    assert 20 < row.tries < 60
    assert clock.at - T0 <= policy.give_up_after


def test_no_answer_is_retried(desk: Desk, tmp_path: Path) -> None:
    start_cursors(desk.sessions)
    book(desk, "c0ffee06", answered=False, rule="window")
    closed = f"http://127.0.0.1:{free_port()}/hooks"
    with make_client(timeout=2.0) as client:
        queue_new(desk.sessions)
        deliver_due(desk.sessions, client, Receiver(closed, SECRET))
    [row] = deliveries(desk.sessions)
    assert (row.status, row.tries, row.last_status) == (DeliveryStatus.PENDING, 1, None)
    assert row.last_error == "no answer: ConnectError"


def test_only_calls_after_the_webhook_was_set_are_pushed_and_late_rows_are_caught(
    desk: Desk, tmp_path: Path
) -> None:
    before = book(desk, "c0ffee07", answered=False, rule="window")
    start_cursors(desk.sessions)
    after = book(desk, "c0ffee08", answered=False, rule="window")
    assert queue_new(desk.sessions) == 1
    # A row with a lower id commits after the poll read a higher one (two dialer workers
    # booking at once on PostgreSQL): the look-back finds it.
    with desk.sessions() as session:
        template = session.get(CallAttempt, after)
        assert template is not None
        for new_id, call_id in ((after + 5, "c0ffee09"), (after + 2, "c0ffee10")):
            session.add(
                CallAttempt(
                    **{
                        c.key: getattr(template, c.key)
                        for c in CallAttempt.__table__.columns
                        if c.key not in ("id", "call_id")
                    },
                    id=new_id,
                    call_id=call_id,
                )
            )
            session.commit()
            if call_id == "c0ffee09":
                assert queue_new(desk.sessions) == 1
    assert queue_new(desk.sessions) == 1
    assert queue_new(desk.sessions) == 0
    pushed = sorted(row.attempt_id for row in deliveries(desk.sessions))
    assert pushed == [after, after + 2, after + 5]
    assert before not in pushed


def test_delivered_events_are_pruned_after_30_days_and_never_sent_again(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "LOOKBACK", 2)  # instead of booking 500 calls
    start_cursors(desk.sessions)
    ids = [book(desk, f"c0ffee2{i}", answered=False, rule="window") for i in range(4)]
    clock = Clock(T0)
    with receiving(FakeReceiver()) as rx, make_client() as client:
        target = Receiver(rx.url, SECRET)
        assert queue_new(desk.sessions, clock) == 4
        assert deliver_due(desk.sessions, client, target, clock) == 4
        assert webhooks.prune(desk.sessions, T0 + timedelta(days=29)) == 0
        clock.at = T0 + timedelta(days=31)
        assert webhooks.prune(desk.sessions, clock.at) == 2
        # the two still inside the poller's look-back are kept, so nothing is queued again
        assert sorted(row.attempt_id for row in deliveries(desk.sessions)) == ids[2:]
        assert queue_new(desk.sessions, clock) == 0
        assert deliver_due(desk.sessions, client, target, clock) == 0
    assert len(rx.got) == 4


# --- a restart of the delivery loop ----------------------------------------------------------


def _serve_webhooks(database_url: str, url: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sessions = session_factory(make_engine(database_url))
    policy = RetryPolicy(first=timedelta(seconds=0.3), max_delay=timedelta(seconds=1))
    run_webhooks(sessions, Receiver(url, SECRET), stop, policy=policy, poll_s=0.2)


def docs_verifier() -> Callable[[bytes, str, bytes], bool]:
    """The receiver's check exactly as docs/http-api.md prints it."""
    docs = (Path(__file__).parents[2] / "docs" / "http-api.md").read_text()
    start = docs.index("```python\n", docs.index("A receiver checks it like this"))
    code = docs[start + len("```python\n") : docs.index("```\n", start + 10)]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/http-api.md", "exec"), namespace)
    verified: Callable[[bytes, str, bytes], bool] = namespace["verified"]
    return verified


def _wait_for(what: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_delivery_survives_a_killed_delivery_process(
    desk: Desk, database_url: str, tmp_path: Path
) -> None:
    start_cursors(desk.sessions)
    book(desk, "c0ffee11", answered=False, rule="window")
    ctx = multiprocessing.get_context("spawn")
    with receiving(FakeReceiver(otherwise=503)) as rx:
        first = ctx.Process(target=_serve_webhooks, args=(database_url, rx.url))
        first.start()
        try:
            _wait_for(lambda: len(rx.got) >= 2)
            os.kill(first.pid or 0, signal.SIGKILL)
        finally:
            first.join(10)
        [row] = deliveries(desk.sessions)
        assert row.status == DeliveryStatus.PENDING and row.tries >= 1
        rx.otherwise = 200
        second = ctx.Process(target=_serve_webhooks, args=(database_url, rx.url))
        second.start()
        try:
            _wait_for(lambda: deliveries(desk.sessions)[0].status == DeliveryStatus.DELIVERED)
            time.sleep(1.0)  # a few more polls: nothing is sent again
        finally:
            second.terminate()
            second.join(15)
    assert second.exitcode == 0
    [accepted] = rx.accepted()
    verified = docs_verifier()  # real time here, so the documented five-minute check applies
    assert verified(SECRET, accepted.headers["dialguard-signature"], accepted.body)
    assert not verified(b"another secret entirely", accepted.headers["dialguard-signature"],
                        accepted.body)  # fmt: skip
    assert not verified(SECRET, accepted.headers["dialguard-signature"], accepted.body + b" ")
    assert len({r.headers["dialguard-delivery"] for r in rx.got}) == 1
    assert len(deliveries(desk.sessions)) == 1


# --- the pure parts, table-driven --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.DELIVERED), (202, Verdict.DELIVERED), (204, Verdict.DELIVERED),
        (400, Verdict.FAILED), (401, Verdict.FAILED), (404, Verdict.FAILED),
        (410, Verdict.FAILED), (422, Verdict.FAILED),
        (408, Verdict.RETRY), (429, Verdict.RETRY), (500, Verdict.RETRY),
        (502, Verdict.RETRY), (503, Verdict.RETRY), (301, Verdict.RETRY),
        (None, Verdict.RETRY),
    ],
)  # fmt: skip
def test_what_an_answer_means(status: int | None, expected: Verdict) -> None:
    assert verdict(status) is expected


@pytest.mark.parametrize(
    ("placed", "rule", "expected"),
    [
        (True, None, Decision.PLACED),
        (False, "window", Decision.REFUSED),
        (False, "do_not_call", Decision.REFUSED),
        (False, None, Decision.NOT_PLACED),
        (False, "allowed", Decision.NOT_PLACED),  # allowed, but no recorder: not placed
    ],
)
def test_the_decision_before_the_trunk(placed: bool, rule: str | None, expected: Decision) -> None:
    assert decision(placed, rule) is expected


P = RetryPolicy()


@pytest.mark.parametrize(
    ("tries", "rand", "retry_after", "wait"),
    [
        (1, 0.0, None, timedelta(seconds=10)),
        (2, 0.0, None, timedelta(seconds=20)),
        (3, 0.0, None, timedelta(seconds=40)),
        (3, 0.999999, None, timedelta(seconds=20.00002)),  # jitter takes up to half off
        (12, 0.0, None, timedelta(hours=1)),  # capped
        (40, 0.0, None, timedelta(hours=1)),
        (1, 0.0, timedelta(seconds=120), timedelta(seconds=120)),  # Retry-After honoured
        (1, 0.0, timedelta(days=3), timedelta(hours=1)),  # ...up to the cap
    ],
)
def test_backoff(tries: int, rand: float, retry_after: timedelta | None, wait: timedelta) -> None:
    at = next_try(P, tries, T0, T0, rand, retry_after)
    assert at is not None
    assert abs((at - T0) - wait) < timedelta(milliseconds=1)


def test_backoff_gives_up_a_day_after_the_event() -> None:
    late = T0 + timedelta(hours=23, minutes=59, seconds=55)
    assert next_try(P, 30, T0, late, 0.0) is None
    assert next_try(P, 30, T0, T0 + timedelta(hours=20), 0.0) is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("30", timedelta(seconds=30)),
        ("Tue, 24 Nov 2026 09:02:00 GMT", timedelta(minutes=2)),
        ("Tue, 24 Nov 2026 08:00:00 GMT", timedelta(0)),  # in the past: now
        ("soon", None),
    ],
)
def test_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, T0) == expected


def test_signature_verifies_only_with_the_secret_the_body_and_a_recent_time() -> None:
    body = b'{"event":"call.attempted"}'
    t = int(T0.timestamp())
    header = signature_header(SECRET, t, body)
    assert header.startswith(f"t={t},v1=")
    assert verify(SECRET, header, body, T0)
    assert not verify(b"another-secret-entirely", header, body, T0)
    assert not verify(SECRET, header, body + b" ", T0)
    assert not verify(SECRET, header, body, T0 + timedelta(minutes=6))  # a replay, later
    assert not verify(SECRET, "v1=abc", body, T0)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://crm.example/hooks/tok123?key=abc", "https://crm.example"),
        ("https://user:pw@crm.example:8443/x", "https://crm.example:8443"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_logs_show_only_the_receivers_host(url: str, shown: str) -> None:
    assert receiver_label(url) == shown
    assert str(Receiver(url, SECRET)) == shown
    assert SECRET.decode() not in repr(Receiver(url, SECRET))


# --- settings --------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("DIALGUARD_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_a_webhook_needs_a_secret_and_the_secret_is_never_shown(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert Settings().webhook_url is None  # by default nothing is pushed
    clean_env.setenv("DIALGUARD_WEBHOOK_URL", "https://crm.example/hooks")
    with pytest.raises(ValidationError, match="required with DIALGUARD_WEBHOOK_URL"):
        Settings()
    clean_env.setenv("DIALGUARD_WEBHOOK_SECRET", "tiny-s3cret")
    with pytest.raises(ValidationError, match="at least 16 characters") as refused:
        Settings()
    assert "tiny-s3cret" not in str(refused.value)
    clean_env.setenv("DIALGUARD_WEBHOOK_SECRET", SECRET.decode())
    settings = Settings()
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == SECRET.decode()
    assert SECRET.decode() not in repr(settings) and SECRET.decode() not in str(settings)
    clean_env.setenv("DIALGUARD_WEBHOOK_URL", "ftp://crm.example/hooks")
    with pytest.raises(ValidationError, match="http:// or https://"):
        Settings()
