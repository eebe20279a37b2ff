"""What a call attempt taught us about the number dialed, and when to dial it again.

A collection floor that redials a dead number every hour wastes trunk
capacity, burns caller IDs (carriers flag callers with many failed calls) and
counts against the debtor's daily caps for nothing. So every attempt's outcome
is turned into a number status, from two kinds of evidence:

- the SIP final response (``status_from_sip``): the code, and the Q.850 cause
  that carriers put in a ``Reason`` header, which is more precise than the
  code when present;
- the carrier's recorded announcement in early media, transcribed
  (``status_from_announcement``): Chinese carriers often answer 183 with
  "您拨打的电话已停机" and then a generic 480 or 404, so the words are the
  only place where "suspended" is said at all. Some announcements are about
  us, not the number ("your call has been blocked"): ``PhraseBook.verdict``
  tells those apart as ``caller_blocked``, which counts against the caller
  ID (dialer/caller_ids.py) and says nothing about the number.

``may_dial`` then keeps a number in a bad status off the dial list until its
re-check interval has passed, because every status but ``nonexistent`` is
temporary, and even a nonexistent number is reissued by carriers eventually.

Pure on purpose, like the call policy: the caller hands in the outcome, the
transcript and the time, so the dialer, the API and an auditor replaying the
evidence all reach the same status. Storing the status and its evidence is
the caller's job.

When the evidence says nothing about the number (our trunk is down, the
carrier is congested, a codec mismatch), the answer is ``None``: "learned
nothing", which must leave the stored status alone. A wrong bad status stops
calls to a real debtor for days; a missed one costs one more attempt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, NamedTuple, TypeVar

from transcribe.phrases import has_han, normalise, substring_distance

K = TypeVar("K", bound=str)


class NumberStatus(StrEnum):
    """Stable values: they are stored with each status change, so never rename one."""

    NONEXISTENT = "nonexistent"
    SUSPENDED = "suspended"
    OUT_OF_AREA = "out_of_area"
    BARRED = "barred"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REACHABLE = "reachable"
    HUNG_UP = "hung_up"
    UNKNOWN = "unknown"


class CodeMeaning(NamedTuple):
    """One row of a code map; ``why`` is what docs/calling.md and the evidence log show."""

    status: NumberStatus | None
    why: str


# SIP final responses (RFC 3261 §21, RFC 3398 §8.2.6.1 for the ISUP mapping,
# RFC 8197 and RFC 8688 for 607/608). Codes not listed teach nothing (None):
# RFC 3261 lets a UAC treat an unknown code as x00 of its class, but 600 is
# "busy everywhere" and guessing a bad status is worse than learning nothing.
SIP_CODES: Mapping[int, CodeMeaning] = MappingProxyType(
    {
        400: CodeMeaning(None, "Bad Request: our request was malformed; says nothing"),
        401: CodeMeaning(None, "Unauthorized: our trunk credentials; says nothing"),
        403: CodeMeaning(
            NumberStatus.BARRED,
            "Forbidden (Q.850 21 call rejected): the callee or the carrier refused the call. "
            "Ambiguous: a carrier also answers 403 when it refuses our caller ID or trunk, "
            "which caller-ID health tracks separately",
        ),
        404: CodeMeaning(
            NumberStatus.NONEXISTENT, "Not Found (Q.850 1 unallocated number): no such number"
        ),
        407: CodeMeaning(None, "Proxy Authentication Required: our trunk; says nothing"),
        408: CodeMeaning(
            NumberStatus.NO_ANSWER,
            "Request Timeout (Q.850 18 no user responding): nobody picked up in time",
        ),
        410: CodeMeaning(
            NumberStatus.NONEXISTENT,
            "Gone (Q.850 22 number changed): the number was given up; the debtor moved on",
        ),
        480: CodeMeaning(
            NumberStatus.NO_ANSWER,
            "Temporarily Unavailable (Q.850 19 no answer, 20 subscriber absent): "
            "the callee did not take the call; 'absent' would be out_of_area, but only a "
            "Q.850 cause or an announcement tells them apart, so the shorter re-check wins",
        ),
        484: CodeMeaning(
            NumberStatus.NONEXISTENT,
            "Address Incomplete (Q.850 28 invalid number format): we send only validated "
            "E.164, so a carrier that finds it incomplete has no such number",
        ),
        486: CodeMeaning(NumberStatus.BUSY, "Busy Here (Q.850 17 user busy): on another call"),
        487: CodeMeaning(
            NumberStatus.NO_ANSWER,
            "Request Terminated: we cancelled after the ring timeout; a cancel by the agent "
            "before that says nothing (pass agent_cancelled=True)",
        ),
        488: CodeMeaning(None, "Not Acceptable Here (Q.850 65, 88): codec mismatch; says nothing"),
        500: CodeMeaning(
            None, "Server Internal Error (Q.850 111, 127): carrier trouble; says nothing"
        ),
        502: CodeMeaning(
            None,
            "Bad Gateway (Q.850 27 destination out of order): a broken hop; says nothing "
            "about the number unless the Q.850 cause says otherwise",
        ),
        503: CodeMeaning(
            None, "Service Unavailable (Q.850 34, 38, 41, 42, 47): congestion; says nothing"
        ),
        504: CodeMeaning(
            None, "Server Time-out (Q.850 102): a carrier timer ran out; says nothing"
        ),
        600: CodeMeaning(NumberStatus.BUSY, "Busy Everywhere: busy on every device"),
        603: CodeMeaning(
            NumberStatus.BARRED,
            "Decline: the callee (or a blocking service for them) rejected the call. "
            "Ambiguous: some handsets send 603 for a pressed 'reject', which is closer to busy",
        ),
        604: CodeMeaning(
            NumberStatus.NONEXISTENT, "Does Not Exist Anywhere: the number is not assigned"
        ),
        607: CodeMeaning(
            NumberStatus.BARRED, "Unwanted (RFC 8197): the callee marked our calls as unwanted"
        ),
        608: CodeMeaning(
            NumberStatus.BARRED,
            "Rejected (RFC 8688): a carrier's call-analytics blocked the call; also a "
            "caller-ID health signal",
        ),
    }
)

# Q.850 causes in a ``Reason: Q.850;cause=N`` header. A carrier that sends one
# knows more than its SIP code says (404 with cause 34 is congestion, not a
# dead number; 480 with cause 20 is a handset switched off), so a cause listed
# here wins over the code. Causes not listed fall back to the code.
Q850_CAUSES: Mapping[int, CodeMeaning] = MappingProxyType(
    {
        1: CodeMeaning(NumberStatus.NONEXISTENT, "unallocated (unassigned) number"),
        17: CodeMeaning(NumberStatus.BUSY, "user busy"),
        18: CodeMeaning(NumberStatus.NO_ANSWER, "no user responding"),
        19: CodeMeaning(NumberStatus.NO_ANSWER, "no answer from user (user alerted)"),
        20: CodeMeaning(
            NumberStatus.OUT_OF_AREA, "subscriber absent: handset off or out of coverage"
        ),
        21: CodeMeaning(NumberStatus.BARRED, "call rejected"),
        22: CodeMeaning(NumberStatus.NONEXISTENT, "number changed"),
        27: CodeMeaning(
            NumberStatus.OUT_OF_AREA, "destination out of order: the callee's line is down"
        ),
        28: CodeMeaning(NumberStatus.NONEXISTENT, "invalid number format (address incomplete)"),
        34: CodeMeaning(None, "no circuit/channel available: congestion"),
        38: CodeMeaning(None, "network out of order"),
        41: CodeMeaning(None, "temporary failure"),
        42: CodeMeaning(None, "switching equipment congestion"),
        47: CodeMeaning(None, "resource unavailable"),
        55: CodeMeaning(NumberStatus.BARRED, "incoming calls barred within CUG"),
        102: CodeMeaning(None, "recovery on timer expiry"),
        111: CodeMeaning(None, "protocol error"),
        127: CodeMeaning(None, "interworking, unspecified"),
    }
)

# An answered call that ends within this many seconds of talk is a debtor who
# picked up and hung up on hearing a collector, not a conversation.
HUNG_UP_WITHIN_S = 5.0

_Q850 = re.compile(r"q\.850\s*;\s*cause\s*=\s*(\d+)", re.IGNORECASE)


def q850_cause(reason: str) -> int | None:
    """The Q.850 cause in a ``Reason`` header value, if a carrier sent one."""
    match = _Q850.search(reason)
    return int(match.group(1)) if match else None


def status_from_sip(
    code: int,
    reason: str = "",
    answered: bool = False,
    talk_s: float = 0.0,
    *,
    agent_cancelled: bool = False,
    hung_up_within_s: float = HUNG_UP_WITHIN_S,
) -> NumberStatus | None:
    """The number status an attempt's final response shows, or None when it shows nothing.

    An answered call proves the number works, whatever happened after; how
    long the talk lasted tells a conversation from a hang-up. For a failure,
    a known Q.850 cause in ``reason`` is more precise than the SIP code, so it
    wins. ``agent_cancelled`` marks a 487 the agent caused by giving up before
    the ring timeout, which says nothing about the number.
    """
    if talk_s < 0:
        raise ValueError(f"talk time cannot be negative, got {talk_s}")
    if answered or 200 <= code < 300:
        return NumberStatus.HUNG_UP if talk_s < hung_up_within_s else NumberStatus.REACHABLE
    if code < 300:
        return None  # provisional: the attempt has not ended
    if code == 487 and agent_cancelled:
        return None
    cause = q850_cause(reason)
    if cause is not None and cause in Q850_CAUSES:
        return Q850_CAUSES[cause].status
    meaning = SIP_CODES.get(code)
    return meaning.status if meaning else None


# Carrier announcements heard in early media, as the ASR engine writes them.
# Chinese phrases leave out the leading 您/你 (ASR mixes them up, and 所拨打
# contains 拨打), and are listed per noun (电话/号码/用户) since carriers word
# the same announcement differently and two characters exceed the edit budget.
# The short phrases (已停机, 已关机, "does not exist") match (almost) exactly
# and catch announcements whose opening the ASR garbled ("the number you can
# dial does not exist"); early media carries only the carrier's voice, so they
# are specific enough there.
#
# 暂时无法接通 ("cannot be connected for the moment") is out_of_area: carriers
# play it when the network cannot page the handset (no coverage, and on some
# networks powered off). Some also play it for a rejected call, which a
# one-day re-check tolerates: the debtor is called again tomorrow.
DEFAULT_PHRASES: Mapping[NumberStatus, Sequence[str]] = MappingProxyType(
    {
        NumberStatus.NONEXISTENT: (
            "拨打的号码是空号",
            "拨打的电话是空号",
            "拨打的号码不存在",
            "拨打的号码有误",
            "是空号",
            "the number you dialed does not exist",
            "the number you have dialed does not exist",
            "does not exist",
            "please check the number and dial again",
            "the number you have dialed is not in service",
            "is no longer in service",
            "is not a working number",
            "has been disconnected",
            "your call cannot be completed as dialed",
        ),
        NumberStatus.SUSPENDED: (
            "拨打的电话已停机",
            "拨打的号码已停机",
            "拨打的用户已停机",
            "拨打的号码已暂停服务",
            "拨打的电话已暂停服务",
            "已停机",
            "the number you dialed has been suspended",
            "has been suspended",
            "has been temporarily disconnected",
            "the number you dialed is out of service",
        ),
        NumberStatus.OUT_OF_AREA: (
            "拨打的电话已关机",
            "拨打的用户已关机",
            "拨打的号码已关机",
            "已关机",
            "拨打的用户不在服务区",
            "拨打的电话不在服务区",
            "拨打的用户暂时无法接通",
            "拨打的电话暂时无法接通",
            "the subscriber you dialed is power off",
            "the subscriber you dialed is powered off",
            "the subscriber you dialed cannot be connected for the moment",
            "is out of the service area",
            "is not reachable",
        ),
        NumberStatus.BARRED: (
            "已设置呼入限制",
            "呼入限制",
            "限制呼入",
            "does not accept incoming calls",
            "is not accepting calls",
            "incoming calls are barred",
        ),
        NumberStatus.BUSY: (
            "拨打的电话正在通话中",
            "拨打的用户正在通话中",
            "拨打的号码正在通话中",
            "用户忙",
            "the subscriber you dialed is busy",
            "the number you have dialed is busy",
            "the line is busy",
        ),
        NumberStatus.NO_ANSWER: (
            "拨打的电话暂时无人接听",
            "拨打的用户暂时无人接听",
            "无人接听",
            "the subscriber you dialed is not answering",
            "there is no answer",
        ),
    }
)


# Phrases and transcripts are compared as `normalise` leaves them (transcribe.phrases,
# shared with QA): width (ＡＢＣ, full-width punctuation), case, spacing and
# punctuation change nothing the carrier said, so only letters and digits are kept.
# Spaces go too, since Chinese ASR inserts them at random and English words stay in
# order anyway. How far a phrase may be from the text (`substring_distance`, also
# shared) and still count is this module's own call: `edit_budget`.


def edit_budget(phrase: str) -> int:
    """How many ASR edits a normalised phrase tolerates and still counts as heard.

    A Chinese character carries a whole syllable, so one wrong homophone per
    six characters is allowed; short phrases must match exactly, since one
    edit in three characters is a different phrase. English letters carry
    less, so one edit per ten letters.
    """
    return len(phrase) // 6 if has_han(phrase) else len(phrase) // 10


def closest_phrase(text: str, phrases: Mapping[K, Sequence[str]]) -> K | None:
    """The key whose phrase a transcript says, or None when it says none of them.

    The closest phrase within its edit budget wins; a tie goes to the longer
    (more specific) phrase. A tie between two keys with phrases of the same
    length is a transcript that could be either (停机 and 关机 differ by one
    character), and a guess there is worse than learning nothing.
    """
    heard = normalise(text)
    if not heard:
        return None
    best: tuple[int, int] | None = None  # (distance, -length): lower is better
    winners: set[K] = set()
    for key, options in phrases.items():
        for option in options:
            phrase = normalise(option)
            if not phrase:
                raise ValueError(f"phrase {option!r} for {key} has no letters or digits")
            distance = substring_distance(phrase, heard)
            if distance > edit_budget(phrase):
                continue
            rank = (distance, -len(phrase))
            if best is None or rank < best:
                best, winners = rank, {key}
            elif rank == best:
                winners.add(key)
    return winners.pop() if len(winners) == 1 else None


def status_from_announcement(
    text: str, phrases: Mapping[NumberStatus, Sequence[str]]
) -> NumberStatus | None:
    """The status a transcribed carrier announcement states, or None when it states none."""
    return closest_phrase(text, phrases)


# Announcements that say the carrier (or the callee's blocking service) refused
# *our caller ID*, not that anything is wrong with the number: they count
# towards caller-ID health (dialer/caller_ids.py), never towards the number's
# status. Chinese networks play them for numbers marked as harassment
# (骚扰电话) and for callees who switched on call interception (来电拦截).
CALLER_BLOCKED: Literal["caller_blocked"] = "caller_blocked"
DEFAULT_BLOCKED_PHRASES: Sequence[str] = (
    "您的呼叫已被拦截",
    "呼叫已被拦截",
    "已被对方拦截",
    "对方已开启来电拦截",
    "主叫号码受限",
    "您的号码已被限制呼出",
    "已被标记为骚扰电话",
    "your call has been blocked",
    "the call has been blocked",
    "calls from your number are blocked",
    "calls from your number are not accepted",
    "your caller id has been blocked",
    "caller id restricted",
    "has been reported as spam",
)

Verdict = NumberStatus | Literal["caller_blocked"]


@dataclass(frozen=True)
class PhraseBook:
    """Everything a carrier announcement is compared with, per verdict.

    One comparison over all lists at once, so that "the call has been
    blocked" is weighed against "incoming calls are barred" and the closer
    one wins, rather than whichever list happens to be asked first.
    """

    statuses: Mapping[NumberStatus, Sequence[str]] = field(default_factory=lambda: DEFAULT_PHRASES)
    caller_blocked: Sequence[str] = DEFAULT_BLOCKED_PHRASES

    def verdict(self, text: str) -> Verdict | None:
        """A number status, ``caller_blocked``, or None when the text states neither."""
        table: dict[str, Sequence[str]] = {str(k): v for k, v in self.statuses.items()}
        table[CALLER_BLOCKED] = self.caller_blocked
        key = closest_phrase(text, table)
        if key is None:
            return None
        return CALLER_BLOCKED if key == CALLER_BLOCKED else NumberStatus(key)


def phrase_book(data: object) -> PhraseBook:
    """A phrase book from a parsed YAML/JSON mapping of verdict -> list of phrases.

    A verdict listed replaces that verdict's default phrases; one not listed
    keeps them, so a site adds its carrier's wording without losing the rest.
    Every mistake is a ValueError naming the key, since the file is written
    by hand and the error goes straight to the operator.
    """
    if not isinstance(data, Mapping):
        raise ValueError("the phrase list must map a status to a list of phrases")
    known = [s.value for s in NumberStatus] + [CALLER_BLOCKED]
    statuses: dict[NumberStatus, Sequence[str]] = dict(DEFAULT_PHRASES)
    blocked: Sequence[str] = DEFAULT_BLOCKED_PHRASES
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"unknown status {key!r}; use one of {', '.join(known)}")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{key}: expected a list of phrases (strings)")
        for phrase in value:
            if not normalise(phrase):
                raise ValueError(f"{key}: phrase {phrase!r} has no letters or digits")
        if key == CALLER_BLOCKED:
            blocked = tuple(value)
        else:
            statuses[NumberStatus(key)] = tuple(value)
    return PhraseBook(MappingProxyType(statuses), blocked)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recheck:
    """How long each status keeps a number off the dial list.

    The defaults follow how long each condition usually lasts: an unassigned
    number is rarely reissued within a month; a suspended (unpaid) or barred
    line comes back within days if at all; a phone switched off or out of
    coverage is usually back the next day; a busy line frees up in minutes;
    an unanswered phone is tried again in the afternoon; a debtor who hung up
    is given a day. A reachable number is not held back here; the call
    policy's caps decide when to call it again.
    """

    nonexistent: timedelta = timedelta(days=30)
    suspended: timedelta = timedelta(days=7)
    barred: timedelta = timedelta(days=7)
    out_of_area: timedelta = timedelta(days=1)
    busy: timedelta = timedelta(minutes=10)
    no_answer: timedelta = timedelta(hours=2)
    hung_up: timedelta = timedelta(days=1)
    reachable: timedelta = timedelta(0)
    unknown: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        for status in NumberStatus:
            if self.interval(status) < timedelta(0):
                raise ValueError(f"re-check interval for {status} must not be negative")

    def interval(self, status: NumberStatus) -> timedelta:
        """The wait after ``status`` was learned."""
        value: timedelta = getattr(self, status.value)
        return value


def _require_aware(value: datetime, what: str) -> None:
    # A naive datetime would be read in the server's zone, silently moving the re-check.
    if value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value.isoformat()}")


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def may_dial(
    status: NumberStatus | None,
    changed_at: datetime | None,
    now: datetime,
    recheck: Recheck,
) -> tuple[bool, str, datetime | None]:
    """Whether the number's last known status lets it be dialed at ``now``.

    Returns (allowed, reason in plain words, next allowed time: None when
    allowed). The reason names the status and when it was learned, because
    an agent told "not now" must be able to check the evidence. A status with
    no time it was learned is inconsistent stored data and raises, rather
    than block the number forever or let it through unexamined.
    """
    _require_aware(now, "now")
    if status is None:
        return True, "no status learned for this number yet", None
    if changed_at is None:
        raise ValueError(f"status {status} needs the time it was learned")
    _require_aware(changed_at, "changed_at")
    learned = f"status {status} learned at {changed_at.isoformat()}"
    wait = recheck.interval(status)
    if wait == timedelta(0):
        return True, f"{learned}; it does not hold the number back", None
    due = changed_at + wait
    if now >= due:
        return True, f"{learned}; its {_human(wait)} re-check interval has passed", None
    return (
        False,
        f"{learned}; not dialed again before its {_human(wait)} re-check interval "
        f"ends at {due.isoformat()}",
        due,
    )
