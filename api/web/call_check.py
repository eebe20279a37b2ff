"""What the agent's page needs from the dialer to say whether a number may be called now.

The decision is the dialer's own (`dialer.decision.verdict`, over the
`decide_number` the worker runs before a click-to-call leaves), with the
debtor's facts from the one function the worker and the click-to-call route
use too (`dialer.debtors.debtor_facts`), so the page says "may call now"
exactly when the dialer will place the call; `tests/api/test_console_agents.py`
holds the two answers side by side. What is left here turns the API's
`Services` into the dialer's `CallSite`.
"""

from __future__ import annotations

from api.web.services import Services
from dialer.debtors import Debtor, DebtorFacts, debtor_facts
from dialer.policy import preset
from dialer.site import CallSite


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
    """The debtor's facts as a click-to-call from the agent's page hands them to the dialer."""
    return debtor_facts(debtor)
