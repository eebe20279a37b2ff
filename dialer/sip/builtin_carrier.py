"""The built-in test carrier: a trunk on 127.0.0.1 that answers every call with a spoken line.

For a first call without a carrier contract: `dialguard up` starts it when
DIALGUARD_TEST_CARRIER says so (by default only with no trunk configured and
SIP on loopback), and its dialer workers dial through it as their trunk. Each
call is decided, recorded, stored, transcribed and QA-checked like any other;
only the far end is this process instead of a phone network.

It answers as "Dialguard test carrier" after a second of ringing, plays its
line once (dialer/carrier_line.py), and hangs up a second after the line
ends; the agent may hang up first. Like every pjsua2 process it carries 4
call legs, so 4 test calls at once; a fifth is answered 486 Busy Here.

It binds 127.0.0.1 only (nothing off this host reaches it) and takes any
INVITE: the dialer workers authenticated and decided the call before.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import time
import wave
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pjsua2 as pj

from dialer.numbers import mask
from dialer.sip.endpoint import start_endpoint

log = logging.getLogger(__name__)

DISPLAY_NAME = "Dialguard test carrier"
HOST = "127.0.0.1"

_DIGITS = re.compile(r"\+?\d{7,}")


class _LogBridge(pj.LogWriter):  # type: ignore[misc]
    """PJSIP's log into ours, numbers masked: the request URIs it logs hold them."""

    def write(self, entry: Any) -> None:
        level = logging.WARNING if entry.level <= 2 else logging.DEBUG
        text = _DIGITS.sub(lambda m: mask(m.group(0)), entry.msg.strip())
        log.log(level, "pjsip: %s", text)


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, carrier: BuiltinCarrier, account: pj.Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self.carrier = carrier

    def onCallState(self, prm: Any) -> None:  # noqa: N802 - pjsua2's name
        try:
            state = self.getInfo().state
        except pj.Error:
            return
        self.carrier._events.append(("state", self, state))

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802 - pjsua2's name
        self.carrier._events.append(("media", self, 0))


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, carrier: BuiltinCarrier) -> None:
        super().__init__()
        self.carrier = carrier

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802 - pjsua2's name
        self.carrier._events.append(("incoming", _Call(self.carrier, self, prm.callId), 0))


@dataclass
class _Answering:
    call: _Call
    answer_at: float  # monotonic: the end of the ringing
    answered_at: float | None = None
    player: pj.AudioMediaPlayer | None = None
    hang_up_at: float | None = None


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


class BuiltinCarrier:
    """One pjsua2 endpoint on HOST:port answering calls with `line`; poll it from one thread."""

    def __init__(
        self,
        port: int,
        line: Path,
        *,
        version: str = "0",
        ring_s: float = 1.0,
        linger_s: float = 1.0,
        media_wait_s: float = 5.0,
    ) -> None:
        self.port = port
        self.line = line
        self.line_s = wav_seconds(line)
        self.ring_s = ring_s
        self.linger_s = linger_s
        self.media_wait_s = media_wait_s
        self.answered = 0  # calls answered since start, for tests and the log
        self._events: deque[tuple[str, _Call, int]] = deque()
        self._calls: dict[_Call, _Answering] = {}
        self._account: _Account | None = None
        self._ep = pj.Endpoint()
        self._logger = _LogBridge()  # referenced here: pjsua2 keeps no reference
        try:
            start_endpoint(
                self._ep, HOST, port, version=version, writer=self._logger, clock_rate=8000
            )
            account = _Account(self)
            acfg = pj.AccountConfig()
            acfg.idUri = f'"{DISPLAY_NAME}" <sip:test-carrier@{HOST}:{port}>'
            account.create(acfg, True)
            self._account = account
        except BaseException:
            self.close()
            raise

    def poll(self, timeout_ms: int = 20) -> None:
        self._ep.libHandleEvents(timeout_ms)
        while self._events:
            kind, call, state = self._events.popleft()
            try:
                self._handle(kind, call, state)
            except pj.Error as exc:
                log.warning("test carrier: %s", exc.reason.strip())
        now = time.monotonic()
        for answering in list(self._calls.values()):
            try:
                self._tick(answering, now)
            except pj.Error as exc:
                log.warning("test carrier: %s", exc.reason.strip())

    def _handle(self, kind: str, call: _Call, state: int) -> None:
        if kind == "incoming":
            self._calls[call] = _Answering(call, answer_at=time.monotonic() + self.ring_s)
            call.answer(_op(180, "Ringing"))
        elif kind == "state" and state == pj.PJSIP_INV_STATE_DISCONNECTED:
            answering = self._calls.pop(call, None)
            if answering is not None:
                answering.player = None  # off the bridge before the call object goes
        elif kind == "media":
            answering = self._calls.get(call)
            if answering is not None and answering.player is None:
                self._play(answering)

    def _play(self, answering: _Answering) -> None:
        info = answering.call.getInfo()
        for i, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                player = pj.AudioMediaPlayer()
                player.createPlayer(str(self.line), pj.PJMEDIA_FILE_NO_LOOP)
                player.startTransmit(answering.call.getAudioMedia(i))
                answering.player = player
                answering.hang_up_at = time.monotonic() + self.line_s + self.linger_s
                return

    def _tick(self, answering: _Answering, now: float) -> None:
        if answering.answered_at is None:
            if now >= answering.answer_at:
                answering.call.answer(_op(200, "OK"))
                answering.answered_at = now
                self.answered += 1
                log.info("test carrier answered a call (%d since start)", self.answered)
            return
        if answering.hang_up_at is None and now - answering.answered_at > self.media_wait_s:
            answering.hang_up_at = now  # no audio came: nothing to say, end it
        if answering.hang_up_at is not None and now >= answering.hang_up_at:
            answering.hang_up_at = float("inf")  # once
            answering.call.hangup(pj.CallOpParam(True))

    @property
    def live_calls(self) -> int:
        return len(self._calls)

    def close(self) -> None:
        """Hang up every call, then stop PJSIP (calls and players gone before libDestroy)."""
        if self._ep.libGetState() == pj.PJSUA_STATE_RUNNING:
            self._ep.hangupAllCalls()
            deadline = time.monotonic() + 3
            while self._calls and time.monotonic() < deadline:
                self.poll(20)
        for answering in self._calls.values():
            answering.player = None
        self._calls.clear()
        self._events.clear()
        if self._account is not None:
            self._account.shutdown()
            self._account = None
        gc.collect()
        self._ep.libDestroy()


def _op(code: int, reason: str) -> pj.CallOpParam:
    op = pj.CallOpParam(True)
    op.statusCode = code
    op.reason = reason
    return op


def run_builtin_carrier(
    port: int, line: Path, stop: threading.Event, version: str = "0", **timing: float
) -> None:
    """Answer calls on HOST:port with `line` until `stop` is set."""
    carrier = BuiltinCarrier(port, line, version=version, **timing)
    log.warning(
        "TEST CARRIER on %s:%d: calls are answered by Dialguard's built-in test carrier "
        "(line %s), not by a phone network; set DIALGUARD_TEST_CARRIER=off in production",
        HOST,
        port,
        line.name,
    )
    try:
        while not stop.is_set():
            carrier.poll(20)
    finally:
        carrier.close()
