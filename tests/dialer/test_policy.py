"""Call policy decisions, one row per situation a collections compliance officer would check.

Every refused row also feeds the property that matters most to an agent: the
`next_allowed_at` we hand out is itself allowed, and nothing before it is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dialer.policy import (
    CN_DEFAULT,
    CN_WORKDAYS,
    PRESETS,
    US_REGF,
    Attempt,
    CallbackWindow,
    Decision,
    Policy,
    Rule,
    debtor_zone,
    decide,
    preset,
)
from dialer.workdays import load_calendar, parse_calendar

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
URUMQI = ZoneInfo("Asia/Urumqi")  # UTC+6: western China, two hours behind Beijing time
CAL = load_calendar()

DEBTOR = "D1"
NUMBER = "+8613800000001"


def local(when: str | datetime, tz: ZoneInfo) -> datetime:
    """A row's wall-clock time in the debtor's zone, or an instant given as is."""
    if isinstance(when, datetime):
        return when
    return datetime.fromisoformat(when).replace(tzinfo=tz)


def sh(text: str) -> datetime:
    return local(text, SH)


def ny(text: str) -> datetime:
    return local(text, NY)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hist(
    *times: str | datetime,
    tz: ZoneInfo = SH,
    debtor: str = DEBTOR,
    number: str = NUMBER,
    connected: bool = False,
    conversation: bool = False,
    in_flight: bool = False,
) -> tuple[Attempt, ...]:
    """Attempts already placed (or still in flight), at wall-clock times in `tz`."""
    return tuple(
        Attempt(
            at=local(t, tz),
            debtor_id=debtor,
            number=number,
            connected=connected or conversation,
            conversation=conversation,
            in_flight=in_flight,
        )
        for t in times
    )


def agreed(start: str, end: str, tz: ZoneInfo = SH) -> tuple[CallbackWindow, ...]:
    return (CallbackWindow(start=local(start, tz), end=local(end, tz)),)


@dataclass(frozen=True)
class Case:
    name: str
    policy: Policy
    at: datetime
    tz: ZoneInfo
    allowed: bool
    rule: Rule
    next_at: datetime | None = None
    attempts: tuple[Attempt, ...] = ()
    callbacks: tuple[CallbackWindow, ...] = ()
    also: tuple[Rule, ...] = ()
    says: str = ""

    def run(self, at: datetime | None = None) -> Decision:
        return decide(
            self.policy,
            self.at if at is None else at,
            self.tz,
            debtor_id=DEBTOR,
            number=NUMBER,
            attempts=self.attempts,
            callbacks=self.callbacks,
            calendar=CAL,
        )


def ok(
    name: str,
    policy: Policy,
    at: str | datetime,
    tz: ZoneInfo = SH,
    *,
    rule: Rule = Rule.ALLOWED,
    attempts: tuple[Attempt, ...] = (),
    callbacks: tuple[CallbackWindow, ...] = (),
    says: str = "",
) -> Case:
    """An allowed row; times are wall-clock in the debtor's zone `tz`."""
    return Case(name, policy, local(at, tz), tz, True, rule, None, attempts, callbacks, (), says)


def no(
    name: str,
    policy: Policy,
    at: str | datetime,
    rule: Rule,
    nxt: str | datetime,
    tz: ZoneInfo = SH,
    *,
    attempts: tuple[Attempt, ...] = (),
    callbacks: tuple[CallbackWindow, ...] = (),
    also: tuple[Rule, ...] = (),
    says: str = "",
) -> Case:
    """A refused row: which rule, and the first time every rule allows."""
    return Case(
        name,
        policy,
        local(at, tz),
        tz,
        False,
        rule,
        local(nxt, tz),
        attempts,
        callbacks,
        also,
        says,
    )


# The tables below keep one situation per row (or two lines), like a compliance checklist;
# the formatter would put every argument on its own line.
# fmt: off
CN, WD, RF = CN_DEFAULT, CN_WORKDAYS, US_REGF
W, H, Q = Rule.WINDOW, Rule.HOLIDAY, Rule.QUIET_HOURS
CB = Rule.CALLBACK

HOURS = [
    ok("08:00 exactly is allowed", CN, "2026-03-02 08:00"),
    no("07:59 waits for 08:00", CN, "2026-03-02 07:59", W, "2026-03-02 08:00", also=(Q,)),
    ok("20:59 is allowed", CN, "2026-03-02 20:59"),
    no("21:00 is refused, next morning 08:00", CN, "2026-03-02 21:00", W, "2026-03-03 08:00",
       says="21:00 is outside the calling hours 08:00-21:00 in the debtor's local time "
       "(Asia/Shanghai). Next allowed: 2026-03-03 08:00 (Asia/Shanghai)."),
    no("21:30 is refused, next morning 08:00", CN, "2026-03-02 21:30", W, "2026-03-03 08:00"),
    no("23:00: outside hours and quiet hours", CN, "2026-03-02 23:00", W, "2026-03-03 08:00",
       also=(Q,)),
    no("03:00 waits for 08:00 the same day", CN, "2026-03-03 03:00", W, "2026-03-03 08:00",
       also=(Q,)),
    ok("a Sunday is callable without the working-days rule", CN, "2026-03-08 10:00"),
    ok("Spring Festival is callable without the working-days rule", CN, "2026-02-17 10:00"),
    ok("09:00 on a working Monday", WD, "2026-03-02 09:00"),
    no("working days: 08:30 waits for 09:00", WD, "2026-03-02 08:30", W, "2026-03-02 09:00",
       says="08:30 is outside the calling hours 09:00-21:00 on working days"),
    no("Spring Festival 2026 waits for the end of the 9-day break", WD, "2026-02-17 10:00", H,
       "2026-02-24 09:00", says="2026-02-17 is a public holiday (Spring Festival)"),
    no("Friday 21:30 before a make-up Saturday: Saturday 09:00", WD, "2026-02-13 21:30", W,
       "2026-02-14 09:00"),
    ok("a make-up Saturday is a working day (2026-02-14)", WD, "2026-02-14 10:00"),
    ok("a make-up Saturday is a working day (2025-02-08)", WD, "2025-02-08 15:00"),
    no("an ordinary Saturday waits for Monday", WD, "2026-03-07 10:00", H, "2026-03-09 09:00",
       says="2026-03-07 is a weekend day, not a make-up working day"),
    no("Spring Festival's Eve 2025 waits for 5 February", WD, "2025-01-28 10:00", H,
       "2025-02-05 09:00"),
    no("21:00 on the last working day before Spring Festival 2025", WD, "2025-01-27 21:00", W,
       "2025-02-05 09:00"),
    no("National Day and Mid-Autumn 2025 wait for 9 October", WD, "2025-10-01 10:00", H,
       "2025-10-09 09:00"),
    no("New Year 2026: the make-up Sunday comes next", WD, "2026-01-01 10:00", H,
       "2026-01-04 09:00"),
    no("provisional 2027 Spring Festival", WD, "2027-02-08 10:00", H, "2027-02-15 09:00",
       says="The 2027 calendar is provisional"),
    no("a year outside the calendar: Monday-Friday", WD, "2028-03-04 10:00", H, "2028-03-06 09:00",
       says="no 2028 data: Monday-Friday assumed"),
    ok("Reg F: 08:00 consumer time", RF, "2026-03-02 08:00", NY),
    no("Reg F: 21:00 consumer time", RF, "2026-03-02 21:00", W, "2026-03-03 08:00", NY),
    ok("Reg F has no working-day rule", RF, "2026-03-08 10:00", NY),
    no("Reg F: no quiet hours apart from the window", RF, "2026-03-02 23:00", W,
       "2026-03-03 08:00", NY),
]

ZONES = [
    no("agent in Shanghai at 20:30, debtor in New York at 07:30", RF, sh("2026-03-02 20:30"), W,
       "2026-03-02 08:00", NY, says="(America/New_York)"),
    no("09:30 Beijing time is 07:30 for a debtor in Urumqi", CN, sh("2026-03-02 09:30"), W,
       sh("2026-03-02 10:00"), URUMQI, also=(Q,)),
    ok("22:30 Beijing time is 20:30 for a debtor in Urumqi", CN, sh("2026-03-02 22:30"), URUMQI),
    ok("DST starts: 12:00 UTC is 08:00 EDT", RF, utc("2026-03-08 12:00"), NY),
    no("the day before DST: 12:00 UTC is 07:00 EST", RF, utc("2026-03-07 12:00"), W,
       utc("2026-03-07 13:00"), NY),
    no("21:30 before DST starts: 08:00 EDT is 12:00 UTC", RF, "2026-03-07 21:30", W,
       utc("2026-03-08 12:00"), NY),
    no("DST ends: 12:00 UTC is 07:00 EST", RF, utc("2026-11-01 12:00"), W, utc("2026-11-01 13:00"),
       NY),
    ok("DST ends: 01:30 UTC is 20:30 EST the evening before", RF, utc("2026-11-02 01:30"), NY),
]

TODAY_3 = hist("2026-03-02 09:00", "2026-03-02 11:00", "2026-03-02 15:00")
MON_TUE_WED = hist("2026-03-02 10:00", "2026-03-03 10:00", "2026-03-04 10:00")
SHARED_5 = sum((hist(f"2026-03-02 {9 + i:02}:00", debtor=f"D{i + 2}") for i in range(5)), ())
SHARED_6 = SHARED_5 + hist("2026-03-02 14:00", debtor="D7")
REGF_6 = hist(*(f"2026-03-0{day} 10:00" for day in range(2, 8)), tz=NY)
REGF_7 = REGF_6 + hist("2026-03-08 10:00", tz=NY)
REGF_MONDAY_7 = hist(*(f"2026-03-02 {hour:02}:00" for hour in range(9, 16)), tz=NY)
REGF_7_TALKED_THU = (hist(*(f"2026-03-0{day} 10:00" for day in (2, 3, 4, 6, 7, 8)), tz=NY)
                     + hist("2026-03-05 10:00", tz=NY, conversation=True))
TALKED_TUE = hist("2026-03-03 15:00", tz=NY, conversation=True)
DC, NC, SP, UC = Rule.DAILY_CAP, Rule.NUMBER_CAP, Rule.STREAK_PAUSE, Rule.UNANSWERED_CAP
R7, RC = Rule.REGF_7IN7, Rule.REGF_AFTER_CONVERSATION

CAPS = [
    ok("3rd call of the day is allowed", CN, "2026-03-02 15:00", attempts=TODAY_3[:2]),
    no("4th call of the day waits for tomorrow", CN, "2026-03-02 16:00", DC, "2026-03-03 08:00",
       attempts=TODAY_3,
       says="already had 3 call attempts on 2026-03-02 (their local date); the limit is 3 a day"),
    no("4th call at 21:30: the cap is named, the hours refuse too", CN, "2026-03-02 21:30", DC,
       "2026-03-03 08:00", attempts=TODAY_3, also=(W,)),
    no("calls on the debtor's other number count", CN, "2026-03-02 16:00", DC, "2026-03-03 08:00",
       attempts=hist(*(a.at for a in TODAY_3), number="+8613900000002")),
    ok("another debtor's calls do not count", CN, "2026-03-02 16:00",
       attempts=hist(*(a.at for a in TODAY_3), debtor="D2", number="+8613900000002")),
    ok("yesterday's three calls do not count today", CN, "2026-03-03 09:00", attempts=TODAY_3),
    no("New York debtor called 3 times this morning: 20:00 there is already tomorrow in Shanghai",
       CN, "2026-03-02 20:00", DC, "2026-03-03 08:00", NY,
       attempts=hist("2026-03-02 09:00", "2026-03-02 10:00", "2026-03-02 11:00", tz=NY)),
    ok("5 attempts on a shared number: the 6th is allowed", CN, "2026-03-02 15:00",
       attempts=SHARED_5),
    no("6 attempts on a shared number: the 7th waits", CN, "2026-03-02 15:00", NC,
       "2026-03-03 08:00", attempts=SHARED_6, also=(UC,),
       says="called 6 times on 2026-03-02, counting every debtor; the limit is 6 a day"),
    ok("calls Mon and Tue: Wednesday is the 3rd day", CN, "2026-03-04 10:00",
       attempts=MON_TUE_WED[:2]),
    no("calls Mon-Wed: Thursday pauses, Saturday resumes", CN, "2026-03-05 10:00", SP,
       "2026-03-07 08:00", attempts=MON_TUE_WED,
       says="called on 3 days in a row, the last on 2026-03-04; after that calls pause for 2 "
       "days and resume on 2026-03-07"),
    no("calls Mon-Wed: Friday is the 2nd pause day", CN, "2026-03-06 10:00", SP,
       "2026-03-07 08:00", attempts=MON_TUE_WED),
    ok("calls Mon-Wed: Saturday is allowed", CN, "2026-03-07 10:00", attempts=MON_TUE_WED),
    ok("a day without calls breaks the run: Mon, Wed, Thu, then Fri", CN, "2026-03-06 10:00",
       attempts=hist("2026-03-02 10:00", "2026-03-04 10:00", "2026-03-05 10:00")),
    no("Wed 21:30 after calls Mon-Wed: next time skips the pause", CN, "2026-03-04 21:30", W,
       "2026-03-07 08:00", attempts=MON_TUE_WED),
    ok("Reg F: the 7th attempt in 7 days is allowed", RF, "2026-03-08 10:00", NY, attempts=REGF_6),
    no("Reg F: the 8th attempt waits until the first ages out", RF, "2026-03-08 15:00", R7,
       "2026-03-09 08:00", NY, attempts=REGF_7,
       says="7 call attempts about this debt from 2026-03-02 to 2026-03-08"),
    no("Reg F: 7 attempts on Monday, none until next Monday", RF, "2026-03-05 10:00", R7,
       "2026-03-09 08:00", NY, attempts=REGF_MONDAY_7),
    ok("Reg F: attempts about another debt do not count", RF, "2026-03-08 15:00", NY,
       attempts=hist(*(a.at for a in REGF_7), debtor="D1-card")),
    no("Reg F: a call 6 days after a conversation", RF, "2026-03-09 10:00", RC,
       "2026-03-10 08:00", NY, attempts=TALKED_TUE,
       says="conversation about this debt took place on 2026-03-03"),
    ok("Reg F: 7 days after a conversation", RF, "2026-03-10 08:00", NY, attempts=TALKED_TUE),
    no("Reg F: a conversation this morning bars this afternoon", RF, "2026-03-03 15:00", RC,
       "2026-03-10 08:00", NY, attempts=hist("2026-03-03 10:00", tz=NY, conversation=True)),
    ok("Reg F: answered, but no conversation about the debt", RF, "2026-03-04 10:00", NY,
       attempts=hist("2026-03-03 10:00", tz=NY, connected=True)),
    no("Reg F: conversation and 7-in-7 both refuse, the longer is named", RF, "2026-03-08 15:00",
       RC, "2026-03-12 08:00", NY, attempts=REGF_7_TALKED_THU, also=(R7,)),
]

# Calls in flight (decided and booked, not ended) count as the worst they may become:
# an attempt for every cap, unanswered for the unanswered cap, a conversation under Reg F.
TEN_A_NUMBER = replace(CN_DEFAULT, name="cn-ten-per-number", number_daily_cap=10)
FLYING_3 = hist("2026-03-02 10:00", "2026-03-02 10:00", "2026-03-02 10:00", in_flight=True)
ENDED_2_FLYING_1 = TODAY_3[:2] + hist("2026-03-02 15:00", in_flight=True)
OTHERS_5_UNANSWERED = sum((hist(f"2026-03-02 {9 + i:02}:00", debtor=f"D{i + 2}")
                           for i in range(5)), ())
OTHERS_6_ANSWERED = sum((hist(f"2026-03-02 {9 + i:02}:00", debtor=f"D{i + 2}", connected=True)
                         for i in range(6)), ())
REGF_6_FLYING_1 = REGF_6 + hist("2026-03-08 10:00", tz=NY, in_flight=True)
MON_TUE_FLYING_WED = MON_TUE_WED[:2] + hist("2026-03-04 10:00", in_flight=True)
FLYING = Rule.REGF_AFTER_CONVERSATION

IN_FLIGHT = [
    no("3 calls in flight at once: the 4th waits", CN, "2026-03-02 10:00", DC, "2026-03-03 08:00",
       attempts=FLYING_3,
       says="already had 3 call attempts on 2026-03-02 (their local date, 3 of them still in "
       "progress); the limit is 3 a day"),
    no("2 ended and 1 in flight: the 4th waits", CN, "2026-03-02 15:00", DC, "2026-03-03 08:00",
       attempts=ENDED_2_FLYING_1, says="1 of them still in progress"),
    ok("2 in flight: the 3rd is allowed", CN, "2026-03-02 10:00", attempts=FLYING_3[:2]),
    ok("another debtor's call in flight on another number does not count", CN,
       "2026-03-02 10:00", attempts=hist(*(a.at for a in FLYING_3), debtor="D2",
                                         number="+8613900000002", in_flight=True)),
    no("6 attempts in flight on one number, any debtors: the 7th waits", CN, "2026-03-02 10:00",
       NC, "2026-03-03 08:00", also=(UC,),
       attempts=sum((hist("2026-03-02 10:00", debtor=f"D{i + 2}", in_flight=True)
                     for i in range(6)), ())),
    no("unanswered cap: 5 unanswered and 1 in flight", TEN_A_NUMBER, "2026-03-02 15:00", UC,
       "2026-03-03 08:00",
       attempts=OTHERS_5_UNANSWERED + hist("2026-03-02 14:00", debtor="D9", in_flight=True),
       says="This number has had 6 unanswered call attempts on 2026-03-02, 1 of them still in "
       "progress; the limit is 6 a day per contact."),
    ok("unanswered cap: 5 unanswered, the 6th is allowed", TEN_A_NUMBER, "2026-03-02 15:00",
       attempts=OTHERS_5_UNANSWERED),
    ok("unanswered cap: answered calls do not count", TEN_A_NUMBER, "2026-03-02 15:00",
       attempts=OTHERS_6_ANSWERED),
    no("unanswered cap holds in cn-default beside the number cap", CN, "2026-03-02 15:00", NC,
       "2026-03-03 08:00", also=(UC,),
       attempts=OTHERS_5_UNANSWERED + hist("2026-03-02 14:00", debtor="D9", in_flight=True)),
    no("Mon and Tue ended, Wed in flight: Thursday pauses", CN, "2026-03-05 10:00", SP,
       "2026-03-07 08:00", attempts=MON_TUE_FLYING_WED),
    no("Reg F: 6 ended and 1 in flight: the 8th waits", RF, "2026-03-08 15:00", FLYING,
       "2026-03-15 08:00", NY, attempts=REGF_6_FLYING_1, also=(R7,),
       says="placed on 2026-03-08 is still in progress and may become a conversation"),
    no("Reg F: a call in flight bars a second one (it may become a conversation)", RF,
       "2026-03-03 10:05", FLYING, "2026-03-10 08:00", NY,
       attempts=hist("2026-03-03 10:00", tz=NY, in_flight=True),
       says="none is placed while it lasts"),
    ok("Reg F: that call ended unanswered: the next is allowed", RF, "2026-03-03 10:05", NY,
       attempts=hist("2026-03-03 10:00", tz=NY)),
    no("Reg F: a real conversation is named as such, beside a call in flight", RF,
       "2026-03-03 15:00", FLYING, "2026-03-10 08:00", NY,
       attempts=hist("2026-03-03 10:00", tz=NY, conversation=True)
       + hist("2026-03-03 14:00", tz=NY, in_flight=True),
       says="conversation about this debt took place on 2026-03-03"),
]

LATE = agreed("2026-03-02 21:15", "2026-03-02 21:45")

CALLBACKS = [
    ok("agreed call-back at 21:30 is allowed", CN, "2026-03-02 21:30", rule=CB, callbacks=LATE,
       says="the debtor agreed to be called 2026-03-02 21:15-21:45 (Asia/Shanghai)"),
    no("after the agreed window the hours apply again", CN, "2026-03-02 21:50", W,
       "2026-03-03 08:00", callbacks=LATE),
    no("refused at 21:05, call-back agreed for 21:30: next is 21:30", CN, "2026-03-02 21:05", W,
       "2026-03-02 21:30", callbacks=agreed("2026-03-02 21:30", "2026-03-02 21:45")),
    no("an agreed window never opens 22:00-08:00 in China", CN, "2026-03-02 22:10", Q,
       "2026-03-03 08:00", callbacks=agreed("2026-03-02 21:30", "2026-03-02 22:30"),
       says="even at the debtor's request"),
    no("an agreed window does not lift the daily cap", CN, "2026-03-02 21:30", DC,
       "2026-03-03 08:00", attempts=TODAY_3, callbacks=LATE),
    no("an agreed window does not lift the streak pause", CN, "2026-03-05 12:00", SP,
       "2026-03-07 08:00", attempts=MON_TUE_WED,
       callbacks=agreed("2026-03-05 11:30", "2026-03-05 12:30")),
    ok("an agreed call on a public holiday is allowed", WD, "2026-02-17 10:10", rule=CB,
       callbacks=agreed("2026-02-17 10:00", "2026-02-17 10:30")),
    ok("Reg F: the consumer asked for 07:00", RF, "2026-03-02 07:10", NY, rule=CB,
       callbacks=agreed("2026-03-02 07:00", "2026-03-02 07:30", NY)),
    no("Reg F: an agreed time does not lift 7-in-7", RF, "2026-03-08 07:10", R7,
       "2026-03-09 08:00", NY, attempts=REGF_7,
       callbacks=agreed("2026-03-08 07:00", "2026-03-08 07:30", NY)),
    no("a call-back window that has passed changes nothing", CN, "2026-03-02 21:30", W,
       "2026-03-03 08:00", callbacks=agreed("2026-03-01 21:15", "2026-03-01 21:45")),
]

ALL = HOURS + ZONES + CAPS + IN_FLIGHT + CALLBACKS
# fmt: on


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_decision(case: Case) -> None:
    decision = case.run()
    assert (decision.allowed, decision.rule) == (case.allowed, case.rule), decision.reason
    assert decision.next_allowed_at == case.next_at, decision.reason
    assert decision.also_refused == case.also
    assert case.says in decision.reason
    if decision.next_allowed_at is not None:
        assert decision.next_allowed_at.tzinfo is case.tz  # shown in the debtor's own clock


REFUSED = [c for c in ALL if not c.allowed]


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_next_allowed_at_is_allowed_and_the_first(case: Case) -> None:
    nxt = case.run().next_allowed_at
    assert nxt is not None
    assert case.run(nxt).allowed
    assert not case.run(nxt - timedelta(minutes=1)).allowed


def random_case(seed: int) -> Case:
    """A busy history around holidays and DST, drawn from a fixed seed."""
    rng = random.Random(seed)
    policy = rng.choice([CN_DEFAULT, CN_WORKDAYS, US_REGF])
    tz = rng.choice([SH, NY, URUMQI])
    base = datetime(2026, rng.choice([1, 2, 3, 9, 10, 11]), rng.randint(1, 20), tzinfo=tz)
    attempts = [
        Attempt(
            at=base + timedelta(minutes=rng.randrange(14 * 24 * 60)),
            debtor_id=rng.choice([DEBTOR, DEBTOR, "D2"]),
            number=rng.choice([NUMBER, "+8613900000002"]),
            conversation=rng.random() < 0.1,
            in_flight=rng.random() < 0.1,
        )
        for _ in range(rng.randint(0, 30))
    ]
    windows = []
    for _ in range(rng.randint(0, 3)):
        start = base + timedelta(minutes=rng.randrange(16 * 24 * 60))
        windows.append(
            CallbackWindow(start=start, end=start + timedelta(minutes=rng.randint(5, 90)))
        )
    at = base + timedelta(minutes=rng.randrange(16 * 24 * 60))
    return Case(
        f"seed {seed}", policy, at, tz, False, Rule.WINDOW, None, tuple(attempts), tuple(windows)
    )


@pytest.mark.parametrize("seed", range(60))
def test_next_allowed_at_over_random_histories(seed: int) -> None:
    case = random_case(seed)
    decision = case.run()
    if decision.allowed:
        assert decision.next_allowed_at is None
        return
    nxt = decision.next_allowed_at
    assert nxt is not None and nxt > case.at
    assert case.run(nxt).allowed
    probe = case.at
    while probe < nxt:  # nothing between the refusal and the answer is allowed
        assert not case.run(probe).allowed, probe
        probe += timedelta(minutes=20)
    assert not case.run(nxt - timedelta(minutes=1)).allowed


def test_a_site_calendar_with_a_local_holiday() -> None:
    site = parse_calendar(
        {"years": {"2026": {"holidays": [{"name": "Local election day", "from": "2026-03-03"}]}}}
    )
    decision = decide(
        CN_WORKDAYS, sh("2026-03-03 10:00"), SH, debtor_id=DEBTOR, number=NUMBER, calendar=site
    )
    assert (decision.rule, decision.next_allowed_at) == (Rule.HOLIDAY, sh("2026-03-04 09:00"))
    assert "public holiday (Local election day)" in decision.reason


@pytest.mark.parametrize(
    ("name", "window", "working_days_only", "caps"),
    [
        ("cn-default", (time(8), time(21)), False, (3, 3, 6, 6, None, None)),
        ("cn-workdays", (time(9), time(21)), True, (3, 3, 6, 6, None, None)),
        ("us-regf", (time(8), time(21)), False, (None, None, None, None, 7, 7)),
    ],
)
def test_presets(
    name: str,
    window: tuple[time, time],
    working_days_only: bool,
    caps: tuple[int | None, ...],
) -> None:
    policy = preset(name)
    assert policy.name == name
    assert (policy.window_start, policy.window_end) == window
    assert policy.working_days_only is working_days_only
    assert (
        policy.daily_cap,
        policy.streak_days,
        policy.number_daily_cap,
        policy.unanswered_daily_cap,
        policy.rolling_cap,
        policy.after_conversation_days,
    ) == caps


def test_unknown_preset_lists_the_valid_names() -> None:
    with pytest.raises(
        ValueError, match="'cn-strict'; valid names: cn-default, cn-workdays, us-regf"
    ):
        preset("cn-strict")
    assert sorted(PRESETS) == ["cn-default", "cn-workdays", "us-regf"]


def test_a_contract_tightens_a_preset_without_code() -> None:
    two_a_day = replace(CN_DEFAULT, name="bank-x", daily_cap=2)
    decision = decide(
        two_a_day,
        sh("2026-03-02 15:00"),
        SH,
        debtor_id=DEBTOR,
        number=NUMBER,
        attempts=hist("2026-03-02 09:00", "2026-03-02 11:00"),
    )
    assert (decision.rule, decision.next_allowed_at) == (Rule.DAILY_CAP, sh("2026-03-03 08:00"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"window_start": time(21), "window_end": time(8)}, "must start before they end"),
        ({"daily_cap": 0}, "daily_cap must be at least 1"),
        ({"rolling_cap": -1}, "rolling_cap must be at least 1"),
        ({"pause_days": -1}, "pause_days must be >= 0"),
        ({"quiet_hours": (time(22), time(22))}, "quiet hours must not start when they end"),
    ],
)
def test_policy_refuses_nonsense(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(CN_DEFAULT, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "from_number", "site", "expected"),
    [
        (URUMQI, NY, SH, URUMQI),  # the debtor record wins
        (None, NY, SH, NY),  # else the number's region
        (None, None, SH, SH),  # else the site's zone
    ],
)
def test_debtor_zone(
    record: ZoneInfo | None, from_number: ZoneInfo | None, site: ZoneInfo, expected: ZoneInfo
) -> None:
    assert debtor_zone(record, from_number, site) is expected


def test_naive_times_are_refused() -> None:
    naive = datetime(2026, 3, 2, 10, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(CN_DEFAULT, naive, SH, debtor_id=DEBTOR, number=NUMBER)
    with pytest.raises(ValueError, match="timezone-aware"):
        Attempt(at=naive, debtor_id=DEBTOR, number=NUMBER)
    with pytest.raises(ValueError, match="timezone-aware"):
        CallbackWindow(start=naive, end=sh("2026-03-02 11:00"))
    with pytest.raises(ValueError, match="end after it starts"):
        CallbackWindow(start=sh("2026-03-02 11:00"), end=sh("2026-03-02 11:00"))


def test_working_days_policy_needs_a_calendar() -> None:
    with pytest.raises(ValueError, match="calendar=load_calendar"):
        decide(CN_WORKDAYS, sh("2026-03-02 10:00"), SH, debtor_id=DEBTOR, number=NUMBER)
