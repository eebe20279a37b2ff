"""Call outcomes for the agency's collection system: what a payload says, how it is signed,
and when a failed delivery is tried again. No I/O here: the database side is
`api.outcomes.store`, the HTTP side `api.outcomes.webhooks`.

An outcome is one call attempt as the collection system needs it: who called,
which number (masked: the full number is never sent), the call policy's
decision and rule, the SIP result, the recording and, once the QA worker has
scored the call, its score. Two events carry it:

- ``call.attempted`` when the dialer books the attempt, refused ones included;
  the recording id is already there (the recording is spooled before the
  attempt is booked).
- ``call.scored`` when the call's QA score exists; it repeats the whole
  outcome, so a receiver that keeps the latest payload per attempt has
  everything.

Deliveries are retried independently, so two events of one attempt may arrive
out of order: the payload's ``sequence`` grows with every event, and a higher
one for the same attempt supersedes a lower one.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

SIGNATURE_HEADER = "Dialguard-Signature"
EVENT_HEADER = "Dialguard-Event"
DELIVERY_HEADER = "Dialguard-Delivery"
#: How far a receiver should let a signature's time stray from its own clock.
TOLERANCE = timedelta(minutes=5)


class Event(enum.StrEnum):
    ATTEMPTED = "call.attempted"
    SCORED = "call.scored"


class Decision(enum.StrEnum):
    PLACED = "placed"  # the policy allowed it and it went to the carrier
    REFUSED = "refused"  # a rule (call policy, do-not-call, number status) refused it
    NOT_PLACED = "not_placed"  # allowed, but Dialguard could not place it (no recorder...)


def decision(placed: bool, rule: str | None) -> Decision:
    """The attempt's fate before the trunk, from what the dialer booked."""
    if placed:
        return Decision.PLACED
    if rule is None or rule == "allowed":
        return Decision.NOT_PLACED
    return Decision.REFUSED


@dataclass(frozen=True)
class QaScore:
    result_id: int
    score: int
    pack: str
    pack_version: str
    scored_at: datetime


@dataclass(frozen=True)
class Outcome:
    """One booked attempt joined with what is known about it since."""

    attempt_id: int
    call_id: str
    agent: str
    number_masked: str
    number_role: str | None  # debtor, relative, employer, emergency: who the number reaches
    debtor_id: str | None
    client: str | None
    started_at: datetime
    placed: bool
    rule: str | None
    caller_id: str | None
    sip_status: int
    sip_reason: str
    answered: bool
    ring_s: float
    talk_s: float
    ended_by: str
    recording_id: str | None
    qa: QaScore | None


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """The outcome as both the webhook payload and `GET /api/v1/outcomes` show it."""
    qa = outcome.qa
    return {
        "attempt_id": outcome.attempt_id,
        "call_id": outcome.call_id,
        "agent": outcome.agent,
        "number": outcome.number_masked,
        "number_role": outcome.number_role,
        "debtor_id": outcome.debtor_id,
        "client": outcome.client,
        "started_at": _iso(outcome.started_at),
        "decision": decision(outcome.placed, outcome.rule).value,
        "rule": outcome.rule,
        "caller_id": outcome.caller_id,
        "sip_status": outcome.sip_status,
        "sip_reason": outcome.sip_reason,
        "answered": outcome.answered,
        "ring_s": round(outcome.ring_s, 3),
        "talk_s": round(outcome.talk_s, 3),
        "ended_by": outcome.ended_by,
        "recording_id": outcome.recording_id,
        "qa": None
        if qa is None
        else {
            "result_id": qa.result_id,
            "score": qa.score,
            "pack": qa.pack,
            "pack_version": qa.pack_version,
            "scored_at": _iso(qa.scored_at),
        },
    }


def event_body(
    event: Event, delivery_id: str, sequence: int, created_at: datetime, outcome: Outcome
) -> bytes:
    """The exact bytes sent and signed; stored once, so every retry sends the same body."""
    payload = {
        "id": delivery_id,
        "event": event.value,
        "sequence": sequence,
        "created_at": _iso(created_at),
        "outcome": outcome_json(outcome),
    }
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# --- signing -------------------------------------------------------------------------------


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp + "." + body``, hex: the time is signed, so is the body."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def headers(
    event: str, delivery_id: str, secret: bytes, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: signature_header(secret, timestamp, body),
    }


def verify(
    secret: bytes, header: str, body: bytes, now: datetime, tolerance: timedelta = TOLERANCE
) -> bool:
    """What a receiver does: the signature matches and its time is recent (no replays)."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))


# --- delivery -------------------------------------------------------------------------------


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"  # the receiver refused it for good (a 4xx): retrying cannot help


def verdict(status: int | None) -> Verdict:
    """2xx delivered; 4xx refused for good, except 408 and 429; anything else, no answer
    included, is tried again."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if 400 <= status < 500 and status not in (408, 429):
        return Verdict.FAILED
    return Verdict.RETRY


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: first, 2x first, 4x first... each at most
    `max_delay`, scaled by a random factor in [1 - jitter, 1]; given up `give_up_after`
    the event was created."""

    first: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=24)
    jitter: float = 0.5


def next_try(
    policy: RetryPolicy,
    tries: int,
    created_at: datetime,
    now: datetime,
    rand: float,
    retry_after: timedelta | None = None,
) -> datetime | None:
    """When to try again after `tries` failed tries, or None to give up.

    `rand` in [0, 1) picks the jitter, so receivers coming back up are not hit
    by every retry at once. A receiver's Retry-After is honoured up to
    `max_delay`.
    """
    if tries < 1:
        raise ValueError("tries counts the failed tries so far: at least 1")
    base = min(policy.max_delay, policy.first * (1 << min(tries - 1, 30)))
    delay = base * (1.0 - policy.jitter * rand)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_delay))
    at = now + delay
    if at - created_at > policy.give_up_after:
        return None
    return at


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or an HTTP date (RFC 9110 10.2.3); None if absent or odd."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - now)


def receiver_label(url: str) -> str:
    """The receiver as logs may show it: scheme and host, never a path or query that may
    hold a token."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}"
