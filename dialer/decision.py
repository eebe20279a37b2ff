"""The decision before the trunk: may this number be dialed now, for this debtor, and with
which caller ID.

A worker asks `policy_decider` before any INVITE leaves; the agent's page
asks `verdict`, which takes the same decision again at later moments to say
from when a refused call will be allowed. Both decide with the debtor's
facts from `dialer.debtors.debtor_facts`, so the page says "may call now"
exactly when the worker will place the call.

The worker's decision also books the call it allows (`reserve_number`): the
decision and the reservation are one transaction under a lock the database
holds (dialer/reservations.py), so calls still ringing or talking count for
the next decision on any worker or host. A decision the database cannot
answer refuses the call (`DecisionUnavailable`): fail closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import false, select, true, union_all, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dialer.caller_ids import retired
from dialer.calls import Decide
from dialer.debtors.facts import DebtorFacts, debtor_facts
from dialer.dnc import listed
from dialer.learned import latest_status, recent_outcomes
from dialer.models import AttemptReservation, CallAttempt
from dialer.number_status import NumberStatus, may_dial
from dialer.numbers import mask, number_key, zone_for_number
from dialer.policy import PRESETS, Attempt, Policy, debtor_zone, decide, weekly_callbacks
from dialer.reservations import Booking, DecisionUnavailable, in_flight_on, lock_decision, reserve
from dialer.site import CallSite
from dialer.workdays import WorkdayCalendar, load_calendar
from recording.db.engine import as_utc
from recording.db.site_settings import POLICY_PRESET, read_setting

log = logging.getLogger(__name__)

HISTORY = timedelta(days=31)  # longer than any rule looks back (Reg F: 7 days; streaks: 5)

DO_NOT_CALL = "do_not_call"
NUMBER_STATUS = "number_status"
DECISION_UNAVAILABLE = "decision_unavailable"

_HOPS = 8  # refusals chained one after another (status, then window, then a cap...)


def history(
    session: Session, key: str, since: datetime, debtor_id: str | None = None
) -> list[Attempt]:
    """Calls placed to this number (or this debtor) since `since`, as the policy counts them,
    and the calls in flight (decided and booked, not ended yet).

    A softphone dials a number, not a debtor, so without a debtor the number
    stands in for one. With one (click-to-call), the debtor's own calls count
    for its caps on any of its numbers, and so do debtor-less calls to this
    number; another debtor's calls on the same number (a shared family phone)
    count only for the per-number cap. Returned attempts name the debtor as
    `debtor_id or key` for ours and "other" for the rest.

    One statement reads both tables, so it sees one snapshot: a call whose
    reservation is being replaced by its booked attempt is seen exactly once.
    """
    mine = debtor_id or key
    ended_scope = CallAttempt.number_key == key
    flying_scope = AttemptReservation.number_key == key
    if debtor_id is not None:
        ended_scope = ended_scope | (CallAttempt.debtor_id == debtor_id)
        flying_scope = flying_scope | (AttemptReservation.debtor_id == debtor_id)
    ended = select(
        CallAttempt.started_at.label("at"),
        CallAttempt.number_key.label("number_key"),
        CallAttempt.debtor_id.label("debtor_id"),
        CallAttempt.answered.label("answered"),
        false().label("in_flight"),
    ).where(ended_scope, CallAttempt.placed.is_(True), CallAttempt.started_at >= since)
    flying = select(
        AttemptReservation.reserved_at,
        AttemptReservation.number_key,
        AttemptReservation.debtor_id,
        false(),
        true(),
    ).where(flying_scope, AttemptReservation.reserved_at >= since)
    attempts = []
    for at, number, debtor, answered, in_flight in session.execute(union_all(ended, flying)):
        ours = debtor_id is None or debtor in (debtor_id, None)
        attempts.append(
            Attempt(
                at=as_utc(at),
                debtor_id=mine if ours else "other",
                number=number,
                connected=bool(answered) and not in_flight,
                conversation=bool(answered) and not in_flight,
                in_flight=bool(in_flight),
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
    number's and the debtor's history (calls in flight included), in the
    debtor's zone with their agreed call-back windows. The agent's page asks
    it for now and for later moments, to say from when a call will be
    allowed; it books nothing (a worker's call goes through `reserve_number`).
    """
    key = number_key(site.number_secret, e164)
    with site.sessions() as session:
        return _decide(session, site, e164, key, facts, at)


def decision_locks(key: str, facts: DebtorFacts) -> list[str]:
    """What a decision about this number for this debtor counts, as lock names.

    The number (its own caps, and the stand-in debtor of a keypad call) and
    the debtor (its caps on any of its numbers); two decisions that share
    either wait for each other, all others run side by side.
    """
    names = [f"number:{key}"]
    if facts.debtor_id is not None:
        names.append(f"debtor:{facts.debtor_id}")
    return names


def reserve_number(
    site: CallSite,
    e164: str,
    at: datetime,
    booking: Booking,
    facts: DebtorFacts | None = None,
) -> NumberDecision:
    """The worker's decision, and the booking of the call it allows, as one atomic step.

    Under the decision's lock (dialer/reservations.py) the history is read,
    the decision taken and, when it allows the call, a reservation added in
    the same commit, so the next decision about this number or debtor, on
    any worker or host, counts this call from now on. The caller settles it
    when the call ends (dialer/booking.py). Without `facts`, the debtor is
    the booking's click-to-call request's, else whoever holds the number,
    read in the same session just before the lock (they name what it locks).
    """
    key = number_key(site.number_secret, e164)
    with site.sessions() as session:
        if facts is None:
            facts = debtor_facts(session=session, request_id=booking.request_id, number_key=key)
        lock_decision(session, decision_locks(key, facts))
        decision = _decide(session, site, e164, key, facts, at)
        if decision.allowed:
            reserve(session, booking, key, mask(e164), facts.debtor_id, at)
        session.commit()
    return decision


def _decide(
    session: Session, site: CallSite, e164: str, key: str, facts: DebtorFacts, at: datetime
) -> NumberDecision:
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
        ok, why, due = may_dial(NumberStatus(learned.status), as_utc(learned.at), at, site.recheck)
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


def policy_decider(site: CallSite, worker: str = "") -> Decide:
    """The worker's decision for a call: for the request's debtor, else the number's holders.

    Given the call's id (and its agent), an allowed call is booked as in
    flight in the decision's transaction (`reserve_number`), held by `worker`
    ("host/index") until the call is booked; without one it only decides.
    A database that does not answer raises `DecisionUnavailable`, with the
    reason for the agent: the call is refused, never placed unchecked.
    """

    def decide_call(
        e164: str, request_id: int | None = None, call_id: str | None = None, agent: str = ""
    ) -> tuple[bool, str, str]:
        at = site.clock()
        try:
            if call_id is not None:
                booking = Booking(call_id, agent, worker, request_id)
                decision = reserve_number(site, e164, at, booking)
            else:
                with site.sessions() as session:
                    facts = debtor_facts(
                        session=session,
                        request_id=request_id,
                        number_key=number_key(site.number_secret, e164),
                    )
                decision = decide_number(site, e164, facts, at)
        except SQLAlchemyError as exc:
            log.error(
                "the call policy could not read the database; call refused: %s",
                type(exc).__name__,
                extra={"call_id": call_id or "", "number": mask(e164)},
            )
            raise DecisionUnavailable(
                f"the database did not answer ({type(exc).__name__}), so the call policy "
                "could not count this number's calls; the call is not placed. Try again in a "
                "minute.",
                hint="check the database (dialguard doctor)",
            ) from exc
        return decision.allowed, decision.rule, decision.reason

    return decide_call


@dataclass(frozen=True)
class Verdict:
    """The dialer's answer for one number at one moment, as the agent's page shows it.

    `next_at` is when it will say yes, in the debtor's zone; None when the
    call is allowed now or when no time ends the refusal (a do-not-call list).
    """

    allowed: bool
    rule: str
    reason: str
    next_at: datetime | None
    zone: ZoneInfo


def verdict(site: CallSite, e164: str, now: datetime, facts: DebtorFacts | None = None) -> Verdict:
    """May `e164` be called at `now` for this debtor, and if not, why and from when.

    `decide_number` says only yes or no, while an agent needs "from when":
    each refusing part states when it ends (the status's re-check time, the
    policy's next allowed time), and the decision is taken again at that
    moment until every part allows it, so a time shown is one the dialer
    accepts, knowing today's history.
    """
    facts = facts or DebtorFacts()
    zone = debtor_zone(facts.zone, zone_for_number(e164), site.site_tz)
    first = decide_number(site, e164, facts, now)
    at = first.next_at
    for _ in range(_HOPS):
        if first.allowed or at is None:
            break
        later = decide_number(site, e164, facts, at)
        if later.allowed:
            return Verdict(False, first.rule, first.reason, at.astimezone(zone), zone)
        if later.next_at is None or later.next_at <= at:
            break
        at = later.next_at
    return Verdict(first.allowed, first.rule, first.reason, None, zone)


class CallerIdCheck(Protocol):
    """usable(caller_id, call_id) -> may this caller ID present the call (and is it now its)."""

    def __call__(self, cid: str, call_id: str | None = None) -> bool: ...


def caller_id_check(site: CallSite) -> CallerIdCheck:
    """Whether a caller ID may present the next call; a retirement is logged once as an alert.

    Given the call's id, the check and the choice are one step under a lock
    on the caller ID: the caller ID is written onto the call's reservation,
    so a caller ID back from its cool-off is tried by one call at a time,
    whichever worker places it.
    """
    alerted: set[str] = set()

    def usable(cid: str, call_id: str | None = None) -> bool:
        with site.sessions() as session:  # SIP refusals and "blocked" announcements alike
            if call_id is not None:
                lock_decision(session, [f"caller-id:{cid}"])
            recent = recent_outcomes(session, cid, site.caller_id_health.run)
            trying = in_flight_on(session, cid)
            ok = not retired(recent, site.clock(), site.caller_id_health, trying)
            if ok and call_id is not None:
                session.execute(
                    update(AttemptReservation)
                    .where(AttemptReservation.call_id == call_id)
                    .values(caller_id=cid)
                )
            session.commit()
        if ok:
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
