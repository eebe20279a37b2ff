"""Errors of the dialer package; each carries a one-line operator `hint`."""

from __future__ import annotations

from recording.errors import HintedError


class DialerError(HintedError):
    """Base of every error raised by this package."""


class SipPortBusy(DialerError):
    """Another process holds the SIP address we must bind."""


class SipUnreachable(DialerError):
    """A SIP peer did not answer a probe."""
