"""Pushing call outcomes to the agency's webhook: the outbox, its poller and its sender.

The dialer and the QA worker know nothing of webhooks (nothing below `api`
imports it), so this side finds new rows itself. A cursor per source (call
attempts, QA results) remembers the highest id seen; each poll looks a few
hundred ids back as well, because on PostgreSQL a row can commit after one
with a higher id, and an event already in the outbox is never added twice
(a unique key per event and subject). The cursors start at the rows that
exist when the webhook is first run: earlier calls are read by API, not
pushed.

Each event is a row of the outbox with its body fixed when it is queued, so
a retry sends the same bytes with a fresh signature. A 2xx marks it
delivered in the same step, before anything else is sent; a 4xx other than
408/429 marks it failed for good; everything else, no answer included, is
tried again with exponential backoff and jitter for up to 24 hours. The
outbox is in the database, so deliveries outlive restarts; a process killed
between the receiver's 2xx and the database write sends that event again on
restart with the same `Dialguard-Delivery` id, which is how receivers drop
the duplicate. Delivered events are pruned after 30 days; failed ones stay.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import DateTime, Integer, String, Text, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from api import __version__
from api.outcomes.payload import (
    Event,
    Outcome,
    RetryPolicy,
    Verdict,
    event_body,
    headers,
    next_try,
    parse_retry_after,
    receiver_label,
    verdict,
)
from api.outcomes.store import outcomes_by_id
from dialer.models import CallAttempt
from qa_scoring.models import QaResult
from recording.db.engine import Base, as_utc
from recording.db.heartbeats import run_with_heartbeat
from recording.models import Recording

log = logging.getLogger(__name__)

COMPONENT = "webhooks"
#: How many ids behind the cursor each poll looks again for rows that committed late.
LOOKBACK = 500
BATCH = 200
#: Delivered events are kept this long (a receiver's questions come within days), then pruned.
KEEP_DELIVERED = timedelta(days=30)


class DeliveryStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(Base):
    """One event for the webhook: its fixed body, and how delivering it went."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Sent as Dialguard-Delivery and in the body: the receiver's idempotency key.
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    #: "<event>:<attempt id>[:<qa result id>]": one event per subject, whoever polls.
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    attempt_id: Mapped[int] = mapped_column(Integer, index=True)
    qa_result_id: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookCursor(Base):
    """How far the poller has read one source table."""

    __tablename__ = "webhook_cursors"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: Rows up to this id existed when the webhook first ran: they are never pushed.
    floor_id: Mapped[int] = mapped_column(Integer)
    last_id: Mapped[int] = mapped_column(Integer)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- queueing ------------------------------------------------------------------------------


def _cursor(session: Session, source: str, newest: int) -> WebhookCursor:
    cursor = session.get(WebhookCursor, source)
    if cursor is None:
        cursor = WebhookCursor(source=source, floor_id=newest, last_id=newest)
        session.add(cursor)
        try:
            session.commit()
        except IntegrityError:  # another poller started at the same moment
            session.rollback()
            cursor = session.get(WebhookCursor, source)
            assert cursor is not None
    return cursor


def start_cursors(sessions: sessionmaker[Session]) -> None:
    """Begin at the rows that exist now; later calls are pushed (idempotent)."""
    with sessions() as session:
        _cursor(session, "call_attempts", session.scalar(select(func.max(CallAttempt.id))) or 0)
        _cursor(session, "qa_results", session.scalar(select(func.max(QaResult.id))) or 0)


def _queue(
    session: Session,
    event: Event,
    outcome: Outcome,
    now: datetime,
    qa_result_id: int | None = None,
) -> None:
    key = f"{event.value}:{outcome.attempt_id}" + (f":{qa_result_id}" if qa_result_id else "")
    delivery_id = str(uuid.uuid4())
    row = WebhookDelivery(
        delivery_id=delivery_id,
        dedupe_key=key,
        event=event.value,
        attempt_id=outcome.attempt_id,
        qa_result_id=qa_result_id,
        body="",
        status=DeliveryStatus.PENDING,
        tries=0,
        next_try_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()  # the row id is the event's sequence number
    row.body = event_body(event, delivery_id, row.id, now, outcome).decode()


def _attempts_batch(session: Session, lower: int, now: datetime) -> tuple[int, int] | None:
    """Queue `call.attempted` for the next batch of attempts above `lower`:
    (highest id read, events queued), or None when there are none."""
    ids = list(
        session.scalars(
            select(CallAttempt.id)
            .where(CallAttempt.id > lower)
            .order_by(CallAttempt.id)
            .limit(BATCH)
        )
    )
    if not ids:
        return None
    known = set(
        session.scalars(
            select(WebhookDelivery.attempt_id).where(
                WebhookDelivery.event == Event.ATTEMPTED.value,
                WebhookDelivery.attempt_id.in_(ids),
            )
        )
    )
    missing = [i for i in ids if i not in known]
    outcomes = outcomes_by_id(session, missing)
    for attempt_id in missing:
        _queue(session, Event.ATTEMPTED, outcomes[attempt_id], now)
    return ids[-1], len(missing)


def _scores_batch(session: Session, lower: int, now: datetime) -> tuple[int, int] | None:
    """Queue `call.scored` for the next batch of scored QA results above `lower`."""
    rows = session.execute(
        select(QaResult.id, CallAttempt.id)
        .outerjoin(Recording, Recording.id == QaResult.recording_id)
        .outerjoin(CallAttempt, CallAttempt.call_id == Recording.call_id)
        .where(QaResult.id > lower, QaResult.score.is_not(None))
        .order_by(QaResult.id)
        .limit(BATCH)
    ).all()
    if not rows:
        return None
    result_ids = [result_id for result_id, _ in rows]
    known = set(
        session.scalars(
            select(WebhookDelivery.qa_result_id).where(
                WebhookDelivery.event == Event.SCORED.value,
                WebhookDelivery.qa_result_id.in_(result_ids),
            )
        )
    )
    # A score of a recording that no attempt names (not booked yet, or not a dialer call)
    # is looked at again on later polls while it is inside the look-back window.
    wanted = {
        result_id: attempt_id
        for result_id, attempt_id in rows
        if attempt_id is not None and result_id not in known
    }
    outcomes = outcomes_by_id(session, sorted(set(wanted.values())))
    for result_id, attempt_id in wanted.items():
        _queue(session, Event.SCORED, outcomes[attempt_id], now, qa_result_id=result_id)
    return result_ids[-1], len(wanted)


_Batch = Callable[[Session, int, datetime], tuple[int, int] | None]
_SOURCES: dict[str, _Batch] = {"call_attempts": _attempts_batch, "qa_results": _scores_batch}


def _scan(session: Session, source: str, batch: _Batch, now: datetime) -> int:
    cursor = session.get(WebhookCursor, source)
    assert cursor is not None
    lower = max(cursor.floor_id, cursor.last_id - LOOKBACK)
    queued = 0
    while True:
        try:
            done = batch(session, lower, now)
            if done is None:
                session.commit()
                return queued
            lower, n = done
            cursor.last_id = max(cursor.last_id, lower)
            session.commit()
            queued += n
        except IntegrityError:  # another poller queued some of these first: read them again
            session.rollback()
            cursor = session.get(WebhookCursor, source)
            assert cursor is not None


def queue_new(sessions: sessionmaker[Session], clock: Callable[[], datetime] = _utcnow) -> int:
    """Put an event in the outbox for each attempt booked and each call scored since the
    last poll; returns how many were queued."""
    start_cursors(sessions)
    with sessions() as session:
        return sum(_scan(session, source, batch, clock()) for source, batch in _SOURCES.items())


def prune(sessions: sessionmaker[Session], now: datetime, keep: timedelta = KEEP_DELIVERED) -> int:
    """Delete events delivered more than `keep` ago; returns how many.

    Only those the poller's look-back can no longer reach: a deleted event
    still inside it would be queued, and sent, a second time. Failed events
    stay, for an operator to look into.
    """
    with sessions() as session:
        attempts = session.get(WebhookCursor, "call_attempts")
        scores = session.get(WebhookCursor, "qa_results")
        if attempts is None or scores is None:
            return 0
        old = (WebhookDelivery.status == DeliveryStatus.DELIVERED) & (
            WebhookDelivery.delivered_at < now - keep
        )
        reachable_no_more = (
            (WebhookDelivery.event == Event.ATTEMPTED.value)
            & (WebhookDelivery.attempt_id <= attempts.last_id - LOOKBACK)
        ) | (
            (WebhookDelivery.event == Event.SCORED.value)
            & (WebhookDelivery.qa_result_id <= scores.last_id - LOOKBACK)
        )
        result = session.execute(delete(WebhookDelivery).where(old & reachable_no_more))
        session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receiver:
    url: str
    secret: bytes = field(repr=False)

    def __str__(self) -> str:
        return receiver_label(self.url)


@dataclass(frozen=True)
class _Due:
    id: int
    delivery_id: str
    event: str
    body: bytes
    created_at: datetime
    tries: int


def _post(
    client: httpx.Client, receiver: Receiver, due: _Due, now: datetime
) -> tuple[int | None, str | None, str | None]:
    """(status, Retry-After, error): the body of the answer is never read."""
    sent = headers(due.event, due.delivery_id, receiver.secret, int(now.timestamp()), due.body)
    sent["User-Agent"] = f"Dialguard/{__version__}"
    try:
        with client.stream("POST", receiver.url, content=due.body, headers=sent) as response:
            return response.status_code, response.headers.get("retry-after"), None
    except httpx.HTTPError as exc:
        # The exception's text may hold the URL (a token in its query): only its kind.
        return None, None, f"no answer: {type(exc).__name__}"


def deliver_due(
    sessions: sessionmaker[Session],
    client: httpx.Client,
    receiver: Receiver,
    clock: Callable[[], datetime] = _utcnow,
    rand: Callable[[], float] = random.random,
    policy: RetryPolicy | None = None,
    stop: threading.Event | None = None,
    limit: int = 100,
) -> int:
    """Send the events whose time has come, oldest first; returns how many were delivered."""
    policy = policy or RetryPolicy()
    now = clock()
    with sessions() as session:
        rows = session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_try_at <= now,
            )
            .order_by(WebhookDelivery.next_try_at, WebhookDelivery.id)
            .limit(limit)
        ).all()
        due = [
            _Due(r.id, r.delivery_id, r.event, r.body.encode(), as_utc(r.created_at), r.tries)
            for r in rows
        ]
    delivered = 0
    for item in due:
        if stop is not None and stop.is_set():
            break
        sent_at = clock()
        status, retry_after, error = _post(client, receiver, item, sent_at)
        outcome = verdict(status)
        now = clock()
        extra = {"delivery": item.delivery_id, "event": item.event, "status": status}
        with sessions() as session:
            row = session.get(WebhookDelivery, item.id)
            if row is None or row.status != DeliveryStatus.PENDING:
                continue
            row.tries = item.tries + 1
            row.last_try_at, row.last_status = sent_at, status
            row.last_error = error if status is None else f"HTTP {status}"
            if outcome is Verdict.DELIVERED:
                row.status, row.delivered_at, row.last_error = DeliveryStatus.DELIVERED, now, None
                delivered += 1
            elif outcome is Verdict.FAILED:
                row.status = DeliveryStatus.FAILED
                log.error(
                    "webhook %s refused %s (HTTP %s); not retried",
                    receiver,
                    item.event,
                    status,
                    extra=extra,
                )
            else:
                asked = parse_retry_after(retry_after, now)
                again = next_try(policy, row.tries, item.created_at, now, rand(), asked)
                if again is None:
                    row.status = DeliveryStatus.FAILED
                    log.error(
                        "webhook %s: gave up on %s after %d tries (%s)",
                        receiver,
                        item.event,
                        row.tries,
                        row.last_error,
                        extra=extra,
                    )
                else:
                    row.next_try_at = again
                    log.warning(
                        "webhook %s: %s not delivered (%s); try %d again at %s",
                        receiver,
                        item.event,
                        row.last_error,
                        row.tries + 1,
                        again.isoformat(),
                        extra=extra,
                    )
            session.commit()
    return delivered


def make_client(timeout: float = 10.0) -> httpx.Client:
    """No redirects (a receiver that moved is a failure to see, not to follow with the
    signature), TLS verified, every wait bounded."""
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0), follow_redirects=False)


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    ).all()
    return {str(status): int(n) for status, n in rows}


def run_webhooks(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    stop: threading.Event,
    clock: Callable[[], datetime] = _utcnow,
    policy: RetryPolicy | None = None,
    poll_s: float = 2.0,
    client: httpx.Client | None = None,
) -> None:
    """What `dialguard up` runs when a webhook is configured: poll, send, beat, until stopped."""
    http = client or make_client()
    start_cursors(sessions)
    log.info("webhook deliveries to %s", receiver)

    def tick() -> str:
        queue_new(sessions, clock)
        prune(sessions, clock())
        while deliver_due(sessions, http, receiver, clock, policy=policy, stop=stop) and (
            not stop.is_set()
        ):
            pass
        with sessions() as session:
            n = counts(session)
        return (
            f"to {receiver}: {n.get(DeliveryStatus.PENDING, 0)} pending, "
            f"{n.get(DeliveryStatus.DELIVERED, 0)} delivered, "
            f"{n.get(DeliveryStatus.FAILED, 0)} failed"
        )

    try:
        run_with_heartbeat(COMPONENT, sessions, stop, tick, interval=poll_s, clock=clock)
    finally:
        if client is None:
            http.close()


__all__ = [
    "COMPONENT",
    "DeliveryStatus",
    "Receiver",
    "WebhookCursor",
    "WebhookDelivery",
    "deliver_due",
    "make_client",
    "prune",
    "queue_new",
    "run_webhooks",
    "start_cursors",
]
