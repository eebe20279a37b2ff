"""Whether a collection call may be placed at a given moment; if not, which rule says no and when.

Pure on purpose: the caller hands in the proposed time, the debtor's time zone,
the attempts it knows of and (for working-day policies) a calendar. Nothing here
reads a clock, a database, the environment or a file, so the dialer, the agent's
"when may I call?" and an auditor replaying a call two years later all get the
same answer from the same facts.

Rules (REQUIREMENTS §2), each with a stable id that logs and reports may key on:

- ``window``: calling hours in the debtor's local time (08:00-21:00; 09:00-21:00
  on working days only under ``cn-workdays``) [003, 004; 12 CFR 1006.6(b)(1)(i)];
- ``holiday``: under a working-days-only policy, a public holiday or a weekend
  that is not a make-up working day [004];
- ``quiet_hours``: hours no call is placed even when the debtor asked for one
  (22:00-08:00 in China [002]); the US preset has none, since 1006.6(b)(1)
  lets the consumer's consent override the inconvenient-time presumption;
- ``daily_cap``: calls to one debtor per local day [002];
- ``streak_pause``: after calls on 3 consecutive days, 2 days without [004];
- ``number_cap``: attempts per local day to one number, whoever the debtor [industry];
- ``unanswered_cap``: unanswered attempts per local day to one contact (its number),
  whoever the debtor: at most 6 (China, industry guideline reported for 2026);
- ``regf_7in7``: more than 7 call attempts in 7 consecutive days [1006.14(b)(2)(i)(A)];
- ``regf_after_conversation``: a call within 7 days of a telephone conversation,
  the conversation's date being day one [1006.14(b)(2)(i)(B)].

Calls still in flight (decided and booked, not yet ended; ``Attempt.in_flight``)
count as what they may still become, the worst for each rule: an attempt for
every cap, unanswered for ``unanswered_cap``, and, under Reg F, a conversation
for ``regf_after_conversation`` (no second call while the first may turn into
one). Once the call ends, its real outcome replaces the guess.

An allowed decision carries ``allowed``, or ``callback`` when only a call-back
window the debtor agreed to made the time acceptable, so audits can find every
call placed outside normal hours and the agreement behind it.

Days are the debtor's local calendar days, like the regulations count them: a
call at 23:30 UTC is on the next day for a debtor in Shanghai.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo

from dialer.workdays import WorkdayCalendar


class Rule(StrEnum):
    """Stable rule ids: they end up in call logs and reports, so never rename one."""

    ALLOWED = "allowed"
    CALLBACK = "callback"
    WINDOW = "window"
    HOLIDAY = "holiday"
    QUIET_HOURS = "quiet_hours"
    DAILY_CAP = "daily_cap"
    STREAK_PAUSE = "streak_pause"
    NUMBER_CAP = "number_cap"
    UNANSWERED_CAP = "unanswered_cap"
    REGF_7IN7 = "regf_7in7"
    REGF_AFTER_CONVERSATION = "regf_after_conversation"


# Which refusal to name when several refuse and their next days are the same:
# a limit on the debtor's history outranks the clock, since waiting for the
# window to open is obvious to an agent and the history is not.
_PRIORITY = (
    Rule.REGF_AFTER_CONVERSATION,
    Rule.REGF_7IN7,
    Rule.STREAK_PAUSE,
    Rule.DAILY_CAP,
    Rule.NUMBER_CAP,
    Rule.UNANSWERED_CAP,
    Rule.HOLIDAY,
    Rule.WINDOW,
    Rule.QUIET_HOURS,
)
_RANK = {rule: rank for rank, rule in enumerate(_PRIORITY)}

# Every step of the search for the next allowed time jumps to the end of a
# refusal; with finite history that ends within a few steps per refused day.
# Far past this means inconsistent input (a calendar with no working day).
_MAX_STEPS = 2000


def _require_aware(value: datetime, what: str) -> None:
    # A naive datetime would be read in the server's zone, silently moving the window.
    if value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value.isoformat()}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """A call attempt already placed, answered or not, or still in flight.

    ``conversation`` marks a telephone conversation about the debt with the
    debtor (Reg F's trigger for the 7-day pause), not merely a connected call.
    ``in_flight`` marks a call decided and booked that has not ended yet: its
    ``connected`` and ``conversation`` are unknown, and each rule counts it as
    the worst it may become.
    """

    at: datetime
    debtor_id: str
    number: str
    connected: bool = False
    conversation: bool = False
    in_flight: bool = False

    def __post_init__(self) -> None:
        _require_aware(self.at, "Attempt.at")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackWindow:
    """A time the debtor agreed to be called, from ``start`` up to (not including) ``end``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "CallbackWindow.start")
        _require_aware(self.end, "CallbackWindow.end")
        if self.end <= self.start:
            raise ValueError("a call-back window must end after it starts")


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one proposed call.

    ``next_allowed_at`` is the earliest moment every rule allows, given the
    attempts known now, in the debtor's zone; None when the call is allowed.
    ``also_refused`` lists the other rules that refuse the proposed time.
    """

    allowed: bool
    rule: Rule
    reason: str
    next_allowed_at: datetime | None
    also_refused: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Calling hours and frequency caps; a cap set to None is not applied.

    Presets cover the common cases; a client contract that differs is the
    preset with ``dataclasses.replace`` applied, never a new code path.
    """

    name: str
    window_start: time = time(8)
    window_end: time = time(21)
    working_days_only: bool = False
    quiet_hours: tuple[time, time] | None = (time(22), time(8))
    daily_cap: int | None = 3
    streak_days: int | None = 3
    pause_days: int = 2
    number_daily_cap: int | None = 6
    unanswered_daily_cap: int | None = 6
    rolling_cap: int | None = None
    rolling_days: int = 7
    after_conversation_days: int | None = None

    def __post_init__(self) -> None:
        if not self.window_start < self.window_end:
            raise ValueError(
                f"policy {self.name!r}: calling hours must start before they end "
                f"({self.window_start:%H:%M}-{self.window_end:%H:%M})"
            )
        for label, value in (
            ("daily_cap", self.daily_cap),
            ("streak_days", self.streak_days),
            ("number_daily_cap", self.number_daily_cap),
            ("unanswered_daily_cap", self.unanswered_daily_cap),
            ("rolling_cap", self.rolling_cap),
            ("after_conversation_days", self.after_conversation_days),
        ):
            if value is not None and value < 1:
                raise ValueError(f"policy {self.name!r}: {label} must be at least 1 or None")
        if self.pause_days < 0 or self.rolling_days < 1:
            raise ValueError(f"policy {self.name!r}: pause_days must be >= 0 and rolling_days >= 1")
        if self.quiet_hours is not None and self.quiet_hours[0] == self.quiet_hours[1]:
            raise ValueError(f"policy {self.name!r}: quiet hours must not start when they end")


#: China, [003]/[002]: 08:00-21:00 any day, never 22:00-08:00 even on request,
#: 3 calls a day, a 2-day pause after 3 days in a row, 6 attempts a day per number,
#: and at most 6 unanswered attempts a day per contact (industry guideline, 2026).
CN_DEFAULT = Policy(name="cn-default")

#: China, [004]: as cn-default, but 09:00-21:00 on working days only.
CN_WORKDAYS = Policy(name="cn-workdays", window_start=time(9), working_days_only=True)

#: United States, Regulation F: 08:00-21:00 (1006.6(b)(1)(i)), at most 7 attempts
#: in 7 days and none in the 7 days after a conversation (1006.14(b)(2)(i)).
#: The Chinese per-day caps do not apply; the consumer's consent may move the hours.
US_REGF = Policy(
    name="us-regf",
    quiet_hours=None,
    daily_cap=None,
    streak_days=None,
    number_daily_cap=None,
    unanswered_daily_cap=None,
    rolling_cap=7,
    rolling_days=7,
    after_conversation_days=7,
)

PRESETS: Mapping[str, Policy] = MappingProxyType(
    {p.name: p for p in (CN_DEFAULT, CN_WORKDAYS, US_REGF)}
)


def preset(name: str) -> Policy:
    """The named preset; an unknown name is refused with the valid ones listed."""
    try:
        return PRESETS[name]
    except KeyError:
        valid = ", ".join(sorted(PRESETS))
        raise ValueError(f"unknown call policy {name!r}; valid names: {valid}") from None


def debtor_zone(record: ZoneInfo | None, from_number: ZoneInfo | None, site: ZoneInfo) -> ZoneInfo:
    """The zone the debtor lives in: their record, else their number's region, else the site's.

    A record beats the number because people keep numbers when they move;
    the site's zone is the last resort, never a silent UTC.
    """
    if record is not None:
        return record
    if from_number is not None:
        return from_number
    return site


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def weekly_callbacks(
    windows: Iterable[Mapping[str, object]], tz: ZoneInfo, around: datetime, days: int = 8
) -> list[CallbackWindow]:
    """A debtor's weekly call-back hours (`{"days": ["mon", ...], "start": "18:00",
    "end": "20:00"}`, local time) as the concrete windows from the day before
    `around` to `days` days after it: enough for a decision and its next allowed time.
    """
    start_day = around.astimezone(tz).date() - timedelta(days=1)
    out: list[CallbackWindow] = []
    for window in windows:
        named = window.get("days") or ()
        chosen = {str(d)[:3].lower() for d in named} if isinstance(named, list | tuple) else set()
        begin = time.fromisoformat(f"{window['start']}".zfill(5))
        end = time.fromisoformat(f"{window['end']}".zfill(5))
        for offset in range(days + 2):
            day = start_day + timedelta(days=offset)
            if _WEEKDAYS[day.weekday()] in chosen and begin < end:
                out.append(CallbackWindow(start=_at(day, begin, tz), end=_at(day, end, tz)))
    return sorted(out, key=lambda w: w.start)


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    # Round-trip through UTC so a wall time skipped by DST lands on the real
    # instant just after the gap, never on a time that does not exist.
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC).astimezone(tz)


def _hhmm(clock: time) -> str:
    return f"{clock:%H:%M}"


@dataclass(slots=True)
class _Check:
    """One decision's facts, read once from the attempts: O(attempts), then O(1) per rule."""

    policy: Policy
    tz: ZoneInfo
    calendar: WorkdayCalendar | None
    debtor_days: dict[int, int] = field(default_factory=dict)
    debtor_total: int = 0
    number_days: dict[int, int] = field(default_factory=dict)
    unanswered_days: dict[int, int] = field(default_factory=dict)  # to this number
    conversation_days: set[int] = field(default_factory=set)  # in-flight calls included
    talked_days: set[int] = field(default_factory=set)  # conversations that took place
    flying_debtor: dict[int, int] = field(default_factory=dict)  # in flight, this debtor
    flying_number: dict[int, int] = field(default_factory=dict)  # in flight, this number
    callbacks: list[tuple[datetime, datetime]] = field(default_factory=list)

    def count(self, attempts: Iterable[Attempt], debtor_id: str, number: str) -> None:
        """Tally the attempts per local day; one in flight counts as the worst it may become."""
        p = self.policy
        need_conversations = p.after_conversation_days is not None
        per_number = p.number_daily_cap is not None or p.unanswered_daily_cap is not None
        for attempt in attempts:
            mine = attempt.debtor_id == debtor_id
            same_number = per_number and attempt.number == number
            if not (mine or same_number):
                continue
            day = attempt.at.astimezone(self.tz).toordinal()
            flying = attempt.in_flight
            if mine:
                self.debtor_days[day] = self.debtor_days.get(day, 0) + 1
                self.debtor_total += 1
                if flying:
                    self.flying_debtor[day] = self.flying_debtor.get(day, 0) + 1
                if need_conversations and (attempt.conversation or flying):
                    self.conversation_days.add(day)
                    if attempt.conversation and not flying:
                        self.talked_days.add(day)
            if same_number:
                self.number_days[day] = self.number_days.get(day, 0) + 1
                if flying or not attempt.connected:
                    self.unanswered_days[day] = self.unanswered_days.get(day, 0) + 1
                if flying:
                    self.flying_number[day] = self.flying_number.get(day, 0) + 1

    def working(self, day: date) -> bool:
        return self.calendar is None or self.calendar.is_working_day(day)

    def next_working(self, day: date) -> date:
        return day if self.calendar is None else self.calendar.next_working_day(day)

    # --- time of day -----------------------------------------------------------

    def normal_next(self, local: datetime) -> datetime | None:
        """None inside normal hours on a callable day, else when they next open."""
        p = self.policy
        day, clock = local.date(), local.time()
        open_day = not p.working_days_only or self.working(day)
        if open_day and p.window_start <= clock < p.window_end:
            return None
        if clock >= p.window_start:
            day += timedelta(days=1)
        if p.working_days_only:
            day = self.next_working(day)
        return _at(day, p.window_start, self.tz)

    def callback_next(self, t: datetime) -> datetime | None:
        """t inside an agreed window, else the next window's start; None if none is left."""
        best: datetime | None = None
        for start, end in self.callbacks:
            if end > t:
                candidate = max(start, t)
                if best is None or candidate < best:
                    best = candidate
        return best

    def quiet_next(self, local: datetime) -> datetime | None:
        if self.policy.quiet_hours is None:
            return None
        begin, end = self.policy.quiet_hours
        day, clock = local.date(), local.time()
        wraps = begin > end  # 22:00-08:00 runs over midnight
        inside = (clock >= begin or clock < end) if wraps else (begin <= clock < end)
        if not inside:
            return None
        if wraps and clock >= begin:
            day += timedelta(days=1)
        return _at(day, end, self.tz)

    # --- history (days as proleptic ordinals: int arithmetic, no timedelta churn) ----

    def streak_resume(self, day: int) -> int | None:
        """First day after the pause when `day` falls in one, else None."""
        p, days = self.policy, self.debtor_days
        if p.streak_days is None or len(days) < p.streak_days:
            return None
        for last in range(day - 1, day - 1 - p.pause_days, -1):
            if last in days:
                run = 1
                while run < p.streak_days and last - run in days:
                    run += 1
                return last + p.pause_days + 1 if run >= p.streak_days else None
        return None

    def rolling_resume(self, day: int) -> int | None:
        """First day whose rolling window holds fewer attempts than the cap, if `day`'s is full."""
        p, counts = self.policy, self.debtor_days
        if p.rolling_cap is None or self.debtor_total < p.rolling_cap:
            return None
        span = p.rolling_days
        total = sum(counts.get(d, 0) for d in range(day - span + 1, day + 1))
        if total < p.rolling_cap:
            return None
        while total >= p.rolling_cap:
            day += 1
            total += counts.get(day, 0) - counts.get(day - span, 0)
        return day

    def conversation_resume(self, day: int) -> int | None:
        n = self.policy.after_conversation_days
        if n is None or not self.conversation_days:
            return None
        for talked in range(day, day - n, -1):
            if talked in self.conversation_days:
                return talked + n
        return None

    # --- all rules at one instant ---------------------------------------------------

    def refusals(self, t: datetime) -> tuple[list[tuple[Rule, datetime]], bool]:
        """Every rule refusing t with the earliest time it could stop refusing.

        Each bound is exact (the rule refuses everything before it), which is
        what lets `decide` jump straight to it without skipping an allowed time.
        The flag tells whether t passed the clock only thanks to a call-back window.
        """
        p, tz = self.policy, self.tz
        local = t.astimezone(tz)
        day = local.toordinal()
        out: list[tuple[Rule, datetime]] = []
        by_callback = False

        normal = self.normal_next(local)
        if normal is not None:
            cb = self.callback_next(t) if self.callbacks else None
            if cb is not None and cb == t:
                by_callback = True
            else:
                bound = normal if cb is None else min(normal, cb)
                closed_day = p.working_days_only and not self.working(local.date())
                out.append((Rule.HOLIDAY if closed_day else Rule.WINDOW, bound))
        quiet = self.quiet_next(local)
        if quiet is not None:
            out.append((Rule.QUIET_HOURS, quiet))

        def next_day(resume: int) -> datetime:
            return _at(date.fromordinal(resume), time(0), tz)

        if p.daily_cap is not None and self.debtor_days.get(day, 0) >= p.daily_cap:
            out.append((Rule.DAILY_CAP, next_day(day + 1)))
        if p.number_daily_cap is not None and self.number_days.get(day, 0) >= p.number_daily_cap:
            out.append((Rule.NUMBER_CAP, next_day(day + 1)))
        cap = p.unanswered_daily_cap
        if cap is not None and self.unanswered_days.get(day, 0) >= cap:
            out.append((Rule.UNANSWERED_CAP, next_day(day + 1)))
        if (resume := self.streak_resume(day)) is not None:
            out.append((Rule.STREAK_PAUSE, next_day(resume)))
        if (resume := self.rolling_resume(day)) is not None:
            out.append((Rule.REGF_7IN7, next_day(resume)))
        if (resume := self.conversation_resume(day)) is not None:
            out.append((Rule.REGF_AFTER_CONVERSATION, next_day(resume)))
        return out, by_callback

    # --- plain words -------------------------------------------------------------------

    @staticmethod
    def _flying(count: int) -> str:
        return f", {count} of them still in progress" if count else ""

    def explain(self, rule: Rule, t: datetime) -> str:
        p, tz = self.policy, self.tz
        local = t.astimezone(tz)
        day, ordinal = local.date(), local.toordinal()
        where = f"the debtor's local time ({tz.key})"
        if rule is Rule.WINDOW:
            hours = f"{_hhmm(p.window_start)}-{_hhmm(p.window_end)}"
            scope = " on working days" if p.working_days_only else ""
            return f"{_hhmm(local.time())} is outside the calling hours {hours}{scope} in {where}."
        if rule is Rule.HOLIDAY:
            name = None if self.calendar is None else self.calendar.holiday_name(day)
            what = (
                f"a public holiday ({name})" if name else "a weekend day, not a make-up working day"
            )
            status = "official" if self.calendar is None else self.calendar.status(day.year)
            caveat = {
                "official": "",
                "provisional": f" The {day.year} calendar is provisional, awaiting its notice.",
                "fallback": f" The calendar has no {day.year} data: Monday-Friday assumed.",
            }[status]
            return f"{day} is {what}; this policy calls on working days only.{caveat}"
        if rule is Rule.QUIET_HOURS:
            assert p.quiet_hours is not None
            begin, end = (_hhmm(c) for c in p.quiet_hours)
            return (
                f"{_hhmm(local.time())} in {where} falls in {begin}-{end}, when no collection "
                "call is placed, even at the debtor's request."
            )
        if rule is Rule.DAILY_CAP:
            flying = self._flying(self.flying_debtor.get(ordinal, 0))
            return (
                f"The debtor has already had {self.debtor_days.get(ordinal, 0)} call attempts on "
                f"{day} (their local date{flying}); the limit is {p.daily_cap} a day."
            )
        if rule is Rule.NUMBER_CAP:
            flying = self._flying(self.flying_number.get(ordinal, 0))
            return (
                f"This number has already been called {self.number_days.get(ordinal, 0)} times "
                f"on {day}, counting every debtor{flying}; the limit is {p.number_daily_cap} a day."
            )
        if rule is Rule.UNANSWERED_CAP:
            flying = self._flying(self.flying_number.get(ordinal, 0))
            return (
                f"This number has had {self.unanswered_days.get(ordinal, 0)} unanswered call "
                f"attempts on {day}{flying}; the limit is {p.unanswered_daily_cap} a day per "
                "contact."
            )
        if rule is Rule.STREAK_PAUSE:
            resume = self.streak_resume(ordinal)
            assert resume is not None
            last = date.fromordinal(resume - p.pause_days - 1)
            return (
                f"The debtor was called on {p.streak_days} days in a row, the last on {last}; "
                f"after that calls pause for {p.pause_days} days and resume on "
                f"{date.fromordinal(resume)}."
            )
        if rule is Rule.REGF_7IN7:
            first = ordinal - p.rolling_days + 1
            total = sum(self.debtor_days.get(d, 0) for d in range(first, ordinal + 1))
            return (
                f"{total} call attempts about this debt from {date.fromordinal(first)} to {day} "
                f"already reach Regulation F's limit of {p.rolling_cap} in {p.rolling_days} "
                "consecutive days (12 CFR 1006.14(b)(2)(i)(A))."
            )
        resume = self.conversation_resume(ordinal)
        assert resume is not None and p.after_conversation_days is not None
        talked = date.fromordinal(resume - p.after_conversation_days)
        if talked.toordinal() not in self.talked_days:
            return (
                f"A call about this debt placed on {talked} is still in progress and may become "
                "a conversation, after which Regulation F allows no call for "
                f"{p.after_conversation_days} days (12 CFR 1006.14(b)(2)(i)(B)); none is placed "
                "while it lasts (the time below assumes it does)."
            )
        return (
            f"A telephone conversation about this debt took place on {talked}; Regulation F "
            f"allows no call in the {p.after_conversation_days} days counted from that day, so "
            f"calls resume on {date.fromordinal(resume)} (12 CFR 1006.14(b)(2)(i)(B))."
        )


def decide(
    policy: Policy,
    at: datetime,
    tz: ZoneInfo,
    *,
    debtor_id: str,
    number: str,
    attempts: Iterable[Attempt] = (),
    callbacks: Iterable[CallbackWindow] = (),
    calendar: WorkdayCalendar | None = None,
) -> Decision:
    """Whether `debtor_id` may be called on `number` at `at`, and if not, why and when.

    `attempts` may hold more than this debtor's and this number's: those of
    `debtor_id` count for the per-debtor caps (under us-regf, use one id per
    person and debt), those to `number` count for the per-number cap. They are
    taken as known history, so attempts later on the same day still count.

    An agreed call-back window lifts the calling-hours and working-day rules
    for the time inside it, never the quiet hours or any frequency cap: the
    debtor chose a time, not to be called more often.

    `next_allowed_at` is the earliest instant every rule allows, found by jumping
    from refusal to refusal (each rule knows exactly when it stops refusing), so
    the time handed to an agent is never one that will be refused again. It is
    in the debtor's zone. The rule named is the refusal lasting into the latest
    day, a cap before the clock when tied.
    """
    _require_aware(at, "the proposed call time")
    if policy.working_days_only and calendar is None:
        raise ValueError(
            f"policy {policy.name!r} calls on working days only: pass calendar=load_calendar()"
        )
    check = _Check(policy, tz, calendar if policy.working_days_only else None)
    check.count(attempts, debtor_id, number)
    check.callbacks = [(w.start, w.end) for w in callbacks]

    refused, by_callback = check.refusals(at)
    if not refused:
        if by_callback:
            start, end = next((s, e) for s, e in check.callbacks if s <= at < e)
            agreed = f"{start.astimezone(tz):%Y-%m-%d %H:%M}-{end.astimezone(tz):%H:%M}"
            return Decision(
                True,
                Rule.CALLBACK,
                f"Allowed outside normal calling hours: the debtor agreed to be called "
                f"{agreed} ({tz.key}).",
                None,
            )
        return Decision(
            True, Rule.ALLOWED, "Allowed: every calling-hour and frequency rule passes.", None
        )

    def weight(item: tuple[Rule, datetime]) -> tuple[date, int]:
        return (item[1].astimezone(tz).date(), -_RANK[item[0]])

    named = max(refused, key=weight)[0]
    others = tuple(sorted((r for r, _ in refused if r is not named), key=_RANK.__getitem__))

    t = max(bound for _, bound in refused)
    for _ in range(_MAX_STEPS):
        later, _unused = check.refusals(t)
        if not later:
            break
        t = max(bound for _, bound in later)
    else:  # pragma: no cover - only inconsistent input gets here
        raise ValueError(f"no allowed time found for debtor {debtor_id!r} after {at.isoformat()}")
    t = t.astimezone(tz)
    reason = f"{check.explain(named, at)} Next allowed: {t:%Y-%m-%d %H:%M} ({tz.key})."
    return Decision(False, named, reason, t, others)
