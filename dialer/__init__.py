"""SIP dialing through pjsua2: number filtering and call policy before any call leaves."""

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
from dialer.sip.endpoint import SipEndpoint, run_dialer
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
    "SipEndpoint",
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
    "run_dialer",
    "sip_ping",
    "zone_for_number",
]
