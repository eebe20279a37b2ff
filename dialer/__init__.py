"""SIP dialing: number filtering and call policy before any call leaves.

Importing the package loads no pjsua2: the SIP stack is imported only by
the modules that run it (dialer.sip.endpoint, dialer.sip.b2bua), in the
processes that run them.
"""

from dialer.errors import DialerError, SipPortBusy, SipUnreachable
from dialer.numbers import MalformedNumber, mask, normalize, zone_for_number
from dialer.policy import (
    PRESETS,
    Attempt,
    CallbackWindow,
    Decision,
    Policy,
    Rule,
    debtor_zone,
    decide,
    preset,
)
from dialer.sip.probe import SipReply, port_in_use, sip_ping
from dialer.workdays import WorkdayCalendar, load_calendar

__all__ = [
    "PRESETS",
    "Attempt",
    "CallbackWindow",
    "Decision",
    "DialerError",
    "MalformedNumber",
    "Policy",
    "Rule",
    "SipPortBusy",
    "SipReply",
    "SipUnreachable",
    "WorkdayCalendar",
    "debtor_zone",
    "decide",
    "load_calendar",
    "mask",
    "normalize",
    "port_in_use",
    "preset",
    "sip_ping",
    "zone_for_number",
]
