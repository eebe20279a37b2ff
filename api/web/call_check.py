"""Whether an agent may call a number now and, if not, from when: the dialer's answer.

The decision is the dialer's own (`dialer.service.decide_number`, which
the worker runs before a click-to-call leaves), with the debtor's facts a
click-to-call copies into its request (`facts_of`), so the page says "may
call now" exactly when the dialer will place the call;
`tests/test_console.py` holds the two answers side by side.

The decider says only yes or no, while an agent needs "from when": each
refusing part states when it ends (the status's re-check time, the policy's
next allowed time), and the decision is taken again at that moment until
every part allows it, so a time shown is one the dialer accepts, knowing
today's history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.web.services import Services
from dialer.debtors.records import Debtor, windows_of
from dialer.numbers import zone_for_number
from dialer.policy import debtor_zone, preset
from dialer.service import CallSite, DebtorFacts, decide_number

_HOPS = 8  # refusals chained one after another (status, then window, then a cap...)

#: An account id a click-to-call request can carry (api.routes.calls.CallIn.debtor_id).
REQUEST_DEBTOR = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


@dataclass(frozen=True)
class Verdict:
    """The dialer's answer for one number at one moment.

    `next_at` is when it will say yes, in the debtor's zone; None when the
    call is allowed now or when no time ends the refusal (a do-not-call list).
    """

    allowed: bool
    rule: str
    reason: str
    next_at: datetime | None
    zone: ZoneInfo


def call_site(services: Services, number_secret: bytes) -> CallSite:
    """The dialer's view of this site, from what the API was given.

    Only what a decision reads matters: database, default policy, site zone,
    calendar, number key and clock; no recording is ever stored through it.
    """
    return CallSite(
        sessions=services.sessions,
        policy=preset(services.policy_preset),
        site_tz=services.working_day.tz,
        calendar=services.working_day.calendar,
        number_secret=number_secret,
        spool=services.spool,
        keys=services.keys,
        retention_days=0,
        clock=services.clock,
    )


def facts_of(debtor: Debtor) -> DebtorFacts:
    """The debtor's facts as the click-to-call from the agent's page hands them to the dialer.

    An account id too long for a request goes without: the dialer then
    decides on the number alone, as for a softphone's own call, and so does
    the page.
    """
    if not re.match(REQUEST_DEBTOR, debtor.external_id):
        return DebtorFacts()
    try:
        zone = ZoneInfo(debtor.timezone) if debtor.timezone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return DebtorFacts(debtor.external_id, debtor.client_id, zone, tuple(windows_of(debtor)))


def verdict(site: CallSite, e164: str, now: datetime, facts: DebtorFacts | None = None) -> Verdict:
    """May `e164` be called at `now` for this debtor, and if not, why and from when."""
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
