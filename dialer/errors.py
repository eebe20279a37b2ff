"""Errors of the dialer package; each carries a one-line operator `hint`."""

from __future__ import annotations


class DialerError(Exception):
    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class SipPortBusy(DialerError):
    """Another process holds the SIP address we must bind."""


class SipUnreachable(DialerError):
    """A SIP peer did not answer a probe."""
