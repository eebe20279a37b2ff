"""The decision before the trunk: may this number be dialed now, for this debtor, and with
which caller ID.

A worker asks `policy_decider` before any INVITE leaves; the agent's page
asks `verdict`, which takes the same decision again at later moments to say
from when a refused call will be allowed. Both decide with the debtor's
facts from `dialer.debtors.debtor_facts`, so the page says "may call now"
exactly when the worker will place the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.caller_ids import retired
from dialer.debtors.facts import DebtorFacts, debtor_facts
from dialer.dnc import listed
from dialer.learned import latest_status, recent_outcomes
from dialer.models import CallAttempt
from dialer.number_status import NumberStatus, may_dial
from dialer.numbers import number_key, zone_for_number
from dialer.policy import PRESETS, Attempt, Policy, debtor_zone, decide, weekly_callbacks
from dialer.site import CallSite
from dialer.workdays import WorkdayCalendar, load_calendar
from recording.db.engine import as_utc
from recording.db.site_settings import POLICY_PRESET, read_setting

log = logging.getLogger(__name__)

HISTORY = timedelta(days=31)  # longer than any rule looks back (Reg F: 7 days; streaks: 5)

DO_NOT_CALL = "do_not_call"
NUMBER_STATUS = "number_status"

_HOPS = 8  # refusals chained one after another (status, then window, then a cap...)


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
    """The worker's decision for a call: for the request's debtor, else the number's holders."""

    def decide_call(e164: str, request_id: int | None = None) -> tuple[bool, str, str]:
        with site.sessions() as session:
            facts = debtor_facts(
                session=session,
                request_id=request_id,
                number_key=number_key(site.number_secret, e164),
            )
        decision = decide_number(site, e164, facts, site.clock())
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
