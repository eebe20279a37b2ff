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
from dialer.sip.config import USER_AGENT

log = logging.getLogger(__name__)

__all__ = ["USER_AGENT", "SipEndpoint", "bind_transports", "run_dialer", "start_endpoint"]


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


def start_endpoint(
    endpoint: pj.Endpoint,
    host: str,
    port: int,
    *,
    version: str,
    writer: pj.LogWriter,
    clock_rate: int | None = None,
) -> None:
    """Create, configure and start the process's pjsua2 library, listening on host:port.

    The one setup every pjsua2 endpoint here gets: no threads of its own
    (polled from our loop, callbacks on our thread), PJSIP's log through
    `writer` (keep a reference: pjsua2 does not), our User-Agent, UDP and TCP
    bound, no sound device. With `clock_rate` the endpoint carries calls'
    media: at that rate, with silence sent as silence (no VAD, so recordings
    keep it) and G.711 as the only codec, on both legs: what carriers take,
    what the 8 kHz recordings hold, and no transcoding in the bridge.

    On an error the library may be left created: the caller's close()
    destroys it, as after any later failure of its own setup.
    """
    with _stdout_silenced():  # pjlib prints its banner before any log config applies
        endpoint.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = f"{USER_AGENT}/{version}"
    cfg.logConfig.writer = writer
    cfg.logConfig.level = 3
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.decor = 0
    if clock_rate is not None:
        cfg.medConfig.clockRate = clock_rate
        cfg.medConfig.sndClockRate = clock_rate
        cfg.medConfig.noVad = True  # recordings keep real silence, not gaps
    endpoint.libInit(cfg)
    bind_transports(endpoint, host, port)
    endpoint.audDevManager().setNullDev()
    if clock_rate is not None:
        for codec in endpoint.codecEnum2():
            keep = codec.codecId.split("/")[0] in ("PCMA", "PCMU")
            endpoint.codecSetPriority(codec.codecId, 200 if keep else 0)
    endpoint.libStart()


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
        self._logger = _LogBridge()
        self._account: _RefusingAccount | None = None
        try:
            start_endpoint(self._ep, host, port, version=version, writer=self._logger)
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
