"""The pjsua2 endpoint of one dialer process.

pjsua2 carries at most 4 call legs per process (shared/FACTS.md), so every
dialer worker owns one endpoint. We run pjsua2 with no threads of its own
(`threadCnt = 0`) and poll it from our loop: its callbacks then arrive on our
thread, where a slow callback cannot stall a PJSIP worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pjsua2 as pj

from dialer.errors import SipPortBusy

log = logging.getLogger(__name__)

USER_AGENT = "Dialguard"


def bind_transports(endpoint: pj.Endpoint, host: str, port: int) -> None:
    """UDP and TCP on host:port, as softphones use either; a busy port is named."""
    transport = pj.TransportConfig()
    transport.port = port
    transport.boundAddress = host
    transport.publicAddress = host
    for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
        try:
            endpoint.transportCreate(kind, transport)
        except pj.Error as exc:
            raise SipPortBusy(
                f"cannot bind SIP {host}:{port} ({exc.reason.strip()})",
                hint="stop whatever holds the port or set DIALGUARD_SIP_PORT",
            ) from None


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class _LogBridge(pj.LogWriter):  # type: ignore[misc]
    """PJSIP's log into ours, so its messages carry our structure and levels."""

    def write(self, entry: Any) -> None:
        level = logging.WARNING if entry.level <= 2 else logging.DEBUG
        log.log(level, "pjsip: %s", entry.msg.strip())


class _RefusingAccount(pj.Account):  # type: ignore[misc]
    """Answers every incoming call with 503 until call routing is configured.

    Refusing is the safe default: no call may reach a carrier unchecked.
    """

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802 - pjsua2's name
        call = pj.Call(self, prm.callId)
        op = pj.CallOpParam()
        op.statusCode = 503
        op.reason = "Dialing Not Available"
        call.hangup(op)


class SipEndpoint:
    """A started pjsua2 endpoint bound to host:port over UDP and TCP."""

    def __init__(self, host: str, port: int, version: str = "0") -> None:
        self.host = host
        self.port = port
        self._ep = pj.Endpoint()
        with _stdout_silenced():  # pjlib prints its banner before any log config applies
            self._ep.libCreate()
        self._logger = _LogBridge()
        self._account: _RefusingAccount | None = None
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = f"{USER_AGENT}/{version}"
        cfg.logConfig.writer = self._logger
        cfg.logConfig.level = 3
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.decor = 0
        try:
            self._ep.libInit(cfg)
            bind_transports(self._ep, host, port)
            self._ep.audDevManager().setNullDev()
            self._ep.libStart()
            account = _RefusingAccount()
            acfg = pj.AccountConfig()
            acfg.idUri = f"sip:dialguard@{host}:{port}"
            account.create(acfg, True)
            self._account = account
        except BaseException:
            self.close()
            raise

    def poll(self, timeout_ms: int) -> None:
        self._ep.libHandleEvents(timeout_ms)

    def close(self) -> None:
        if self._account is not None:
            self._account.shutdown()
            self._account = None
        self._ep.libDestroy()


def run_dialer(host: str, port: int, stop: threading.Event, version: str = "0") -> None:
    endpoint = SipEndpoint(host, port, version)
    log.info("SIP endpoint listening", extra={"sip": f"{host}:{port}"})
    try:
        while not stop.is_set():
            endpoint.poll(100)
    finally:
        endpoint.close()
