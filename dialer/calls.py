"""What a call is outside pjsua2: the B2BUA's record of a finished call, the events and
commands of a running one, and the files it leaves beside its audio.

The B2BUA (dialer/sip/b2bua.py) fills these in; the worker process books
them (dialer/booking.py, dialer/live_calls.py), salvage reads the notes a
killed worker left (dialer/sip/salvage.py), and announcements take a failed
call's early media (dialer/announcements.py). None of them needs pjsua2 to
read a call, so none imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol


class Decide(Protocol):
    """decide(e164, request_id, call_id, agent) -> (allowed, rule, reason): the call policy,
    wired by the caller (dialer.decision.policy_decider).

    `request_id` is the click-to-call request being placed (whose debtor it is for),
    None for a call an agent's softphone dialed. Given `call_id`, an allowed call is
    booked as in flight in the same step, and counted until its CallRecord is booked.
    An exception (DecisionUnavailable when the database does not answer) refuses the call.
    """

    def __call__(
        self, e164: str, request_id: int | None = None, call_id: str | None = None, agent: str = ""
    ) -> tuple[bool, str, str]: ...


class Ended(StrEnum):
    AGENT = "agent"
    CARRIER = "carrier"
    DIALGUARD = "dialguard"


@dataclass(frozen=True)
class CallRecord:
    """Facts of one authenticated call attempt, handed to `on_finished` when both legs are gone."""

    call_id: str
    sip_call_id: str
    agent: str
    number: str  # masked: this record is logged and stored widely
    caller_id: str | None
    started_at: float  # epoch seconds, INVITE received
    answered: bool
    duration_s: float  # talk time: carrier's 200 OK to the first BYE
    sip_status: int  # what the agent was finally told (200 when answered)
    sip_reason: str
    ended_by: Ended
    rule: str | None  # the policy rule, when the policy decided
    recording: Path | None  # stereo WAV, agent left and debtor right; None if never answered
    e164: str = field(default="", repr=False)  # for the caller's keyed hash; never logged
    # Stretches of the recording muted while card details were read out (PCI DSS), as
    # (start, end) seconds from the start of the stereo file.
    pauses: tuple[tuple[float, float], ...] = ()
    recorder_alerts: int = 0  # times the watchdog found a recording not growing
    request_id: int | None = None  # the click-to-call request this call answers
    # Stretches either party held the call (relayed to the other as a re-INVITE), as
    # (start, end) seconds from the start of the stereo file; the audio keeps running.
    holds: tuple[tuple[float, float], ...] = ()
    # An unanswered placed call: the carrier's early media (its announcement, mono WAV),
    # for dialer/announcements.py to take or delete. None when none was heard.
    early_media: Path | None = None
    # Ring time: INVITE to the trunk until the carrier answered or the call ended unanswered;
    # 0 when nothing was dialed.
    ring_s: float = 0.0
    # Epoch seconds the carrier answered (its 200 OK); None for an unanswered call. A
    # recording's `recorded_at` is this moment, as docs/recordings.md says.
    answered_at: float | None = None


@dataclass(frozen=True)
class Command:
    """A request from outside the process to one running call (the API's pause and resume)."""

    id: int
    call_id: str
    action: str  # "pause" | "resume"
    actor: str  # who asked


@dataclass(frozen=True)
class CallEvent:
    """What the owner of the B2BUA keeps about a running call, outside this process.

    "started": a call now runs here (commands may name it); "pause" and
    "resume": its recording was muted or unmuted, by whom and from where;
    "refused": a command that did not apply (`detail` says why).
    """

    kind: str
    call_id: str
    agent: str
    at: float  # epoch seconds
    actor: str = ""
    source: str = ""  # "keypad" | "api"
    offset_s: float | None = None  # seconds into the recording, once it has started
    command_id: int | None = None
    detail: str = ""


def note_path(recording: Path) -> Path:
    """The note written beside a call's audio while it runs (see `B2bua._create_recorders`)."""
    return recording.with_suffix(".json")
