"""A finished call is booked as it was: its reason whole, its recording dated at the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from dialer.booking import finish_call
from dialer.calls import CallRecord, Ended
from dialer.models import CallAttempt
from dialer.policy import Attempt, decide, preset
from dialer.sip.b2bua import refusal_phrase
from recording.db.engine import as_utc, session_factory
from tests.audio import tone, write_wav
from tests.dialer.running import SH, Parts, office_hours, recordings

NUMBER = "+12125550123"


def _regf_refusal() -> tuple[str, str]:
    """A real us-regf refusal after a conversation: the longest kind of reason."""
    at = datetime(2026, 11, 24, 10, 0, tzinfo=SH)
    history = [
        Attempt(
            at=at - timedelta(days=1, hours=i),
            debtor_id="D-1",
            number=NUMBER,
            connected=i == 0,
            conversation=i == 0,
        )
        for i in range(7)
    ]
    decision = decide(preset("us-regf"), at, SH, debtor_id="D-1", number=NUMBER, attempts=history)
    assert not decision.allowed
    return decision.rule.value, decision.reason


def test_a_refusal_is_booked_with_its_whole_reason(parts: Parts, engine: Engine) -> None:
    rule, reason = _regf_refusal()
    padded = reason + " " + "x" * 300  # longer than any column ever cut it
    record = CallRecord(
        call_id="refused1",
        sip_call_id="s" * 250,
        agent="agent1",
        number="+1212****0123",
        caller_id=None,
        started_at=office_hours().timestamp(),
        answered=False,
        duration_s=0.0,
        sip_status=403,
        sip_reason=padded,
        ended_by=Ended.DIALGUARD,
        rule=rule,
        recording=None,
        e164=NUMBER,
    )
    finish_call(parts.site(), record)
    with session_factory(engine)() as session:
        booked = session.scalar(select(CallAttempt).where(CallAttempt.call_id == "refused1"))
    assert booked is not None and booked.sip_reason == padded
    assert "Next allowed:" in booked.sip_reason


def test_the_softphone_sees_the_rule_and_the_next_allowed_time() -> None:
    rule, reason = _regf_refusal()
    phrase = refusal_phrase(rule, reason)
    assert phrase.startswith(f"Refused {rule}, next allowed 2026-")
    assert phrase.endswith(" Asia/Shanghai") and len(phrase) <= 120
    assert refusal_phrase("do_not_call", "The number is on a do-not-call list.") == (
        "Refused do_not_call"
    )
    learned = (
        "status hung_up learned at 2026-12-07T02:35:07.848653+00:00; not dialed again before "
        "its 1 day re-check interval ends at 2026-12-08T02:35:07.848653+00:00 (answered)"
    )
    assert refusal_phrase("number_status", learned) == (
        "Refused number_status, next allowed 2026-12-08 02:35 UTC"
    )


def test_a_recording_is_dated_when_the_call_was_answered(
    parts: Parts, engine: Engine, tmp_path: Path
) -> None:
    invited = office_hours().timestamp()
    wav = write_wav(tmp_path / "c1.wav", [tone(3, 440), tone(3, 660)])
    record = CallRecord(
        call_id="answered1",
        sip_call_id="s1",
        agent="agent1",
        number="+1212****0123",
        caller_id="+861058000000",
        started_at=invited,
        answered=True,
        duration_s=3.0,
        sip_status=200,
        sip_reason="OK",
        ended_by=Ended.AGENT,
        rule=None,
        recording=wav,
        e164=NUMBER,
        ring_s=7.5,
        answered_at=invited + 7.9,  # the INVITE, then 7.5 s of ringing, and setup
    )
    finish_call(parts.site(), record)
    [rec] = recordings(engine)
    assert as_utc(rec.recorded_at) == datetime.fromtimestamp(invited + 7.9, UTC)
    assert abs(rec.duration_s - record.duration_s) < 1.0
