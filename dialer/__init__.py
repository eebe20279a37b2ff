"""SIP dialing through pjsua2: number filtering and call policy before any call leaves."""

from dialer.endpoint import SipEndpoint, run_dialer
from dialer.errors import DialerError, SipPortBusy, SipUnreachable
from dialer.probe import SipReply, port_in_use, sip_ping

__all__ = [
    "DialerError",
    "SipEndpoint",
    "SipPortBusy",
    "SipReply",
    "SipUnreachable",
    "port_in_use",
    "run_dialer",
    "sip_ping",
]
