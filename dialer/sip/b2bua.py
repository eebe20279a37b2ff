"""A back-to-back user agent: an authenticated agent's softphone calls a debtor through the trunk.

Prototype, one pjsua2 endpoint per process. The wheel carries at most 4 call
legs per process (shared/FACTS.md), so one process bridges at most two calls;
scale out with processes, not threads.

Why it is shaped this way:

- pjsua2 runs with no threads of its own and is polled from `poll()`, so
  every callback arrives on our thread. Callbacks only snapshot what they
  were told and queue it; the reaction (hanging up the other leg, answering,
  bridging) happens in `poll()` after `libHandleEvents` returns, because
  acting on one leg from inside another leg's callback can stall PJSIP.
- Nothing reaches the carrier unchecked and unrecorded: authentication, the
  number, the call policy and both recorders are settled *before* the trunk
  INVITE. A recorder that cannot be created refuses the call (500) rather
  than placing an unrecorded one.
- Each party is recorded on its own (what the agent says, what the debtor
  says) and merged afterwards into one stereo file, agent left and debtor
  right, which is what transcription expects; the merge runs on a worker
  thread so a long call does not stall SIP while it is written.
- Behind the Kamailio edge (`config.edge`) a worker checks no password: it
  takes a new INVITE only from the edge's addresses with the edge's mark over
  the Call-ID and agent (dialer/edge/trust.py), so a worker port found around
  the edge offers no login to guess. A full worker answers 503, not pjsua's
  486 (dialer/sip/overload.py), so the edge tries the next worker.
- Logs carry our call id and a masked number only.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pjsua2 as pj

from dialer.calls import CallEvent, CallRecord, Command, Decide, Ended, note_path
from dialer.edge import trust
from dialer.errors import DialerError
from dialer.numbers import MalformedNumber, mask, normalize
from dialer.sip.config import B2buaConfig
from dialer.sip.digest import Credential, FailureThrottle, check_login
from dialer.sip.endpoint import start_endpoint
from dialer.sip.media_policy import Verdict, client_transport, sdp_body
from dialer.sip.media_policy import decide as decide_media
from dialer.sip.messages import SipRequest, host_of, parse_request, uri_user
from dialer.sip.overload import OverloadGuard
from dialer.stereo import merge_stereo

log = logging.getLogger(__name__)

PAUSE_KEYS = "*7"  # the agent's softphone keys: pause the recording for card details
RESUME_KEYS = "*8"

# --- pjsua2 glue: callbacks snapshot and queue, nothing more -----------------------------

_DIGITS = re.compile(r"\+?\d{7,}")


class _MaskingLogBridge(pj.LogWriter):  # type: ignore[misc]
    """PJSIP's log into ours with every phone-number-like digit run masked.

    PJSIP logs request URIs ("Making call ... to sip:+8613800138000@..."), and
    a number must never reach a log in full, whatever the level.
    """

    def write(self, entry: Any) -> None:
        level = logging.WARNING if entry.level <= 2 else logging.DEBUG
        text = _DIGITS.sub(lambda m: mask(m.group(0)), entry.msg.strip())
        log.log(level, "pjsip: %s", text)


@dataclass(frozen=True)
class _Event:
    kind: str  # "incoming" | "state" | "media" | "dtmf"
    leg: _Leg
    state: int = 0
    status: int = 0
    reason: str = ""
    msg: str = ""
    source: str = ""


class _Leg(pj.Call):  # type: ignore[misc]
    def __init__(self, b2b: B2bua, account: pj.Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self.b2b = b2b
        self.session: _Session | None = None
        self.state = pj.PJSIP_INV_STATE_NULL
        self.refusal: CallRecord | None = None  # reported once this refused leg is gone

    def onCallState(self, prm: Any) -> None:  # noqa: N802 - pjsua2's name
        try:
            ci = self.getInfo()
        except pj.Error:
            return
        self.b2b._events.append(
            _Event("state", self, ci.state, ci.lastStatusCode, ci.lastReason or "")
        )

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802 - pjsua2's name
        self.b2b._events.append(_Event("media", self))

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802 - pjsua2's name
        self.b2b._events.append(_Event("dtmf", self, msg=str(prm.digit)))


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, b2b: B2bua) -> None:
        super().__init__()
        self.b2b = b2b

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802 - pjsua2's name
        leg = _Leg(self.b2b, self, prm.callId)
        self.b2b._events.append(
            _Event("incoming", leg, msg=prm.rdata.wholeMsg, source=prm.rdata.srcAddress)
        )


# --- per call --------------------------------------------------------------------------------


@dataclass
class _Recorder:
    party: str  # "agent" | "debtor"
    path: Path
    port: pj.AudioMediaRecorder | None
    started: float | None = None  # monotonic, when audio was first connected to it


@dataclass
class _Session:
    id: str
    sip_call_id: str
    agent: str
    agent_leg: _Leg
    e164: str
    started_at: float
    started_mono: float
    recorders: list[_Recorder] = field(default_factory=list)
    trunk_leg: _Leg | None = None
    caller_id: str | None = None
    provisional: int = 0  # highest provisional response sent to the agent
    outbound: bool = False  # click-to-call: we rang the agent, they did not call us
    # How the softphone reached us (udp, tcp, tls): the edge's word behind an edge, else
    # the INVITE's own Via. The media policy reads it.
    client_transport: str = "udp"
    request_id: int | None = None
    dialed_at: float | None = None  # monotonic, INVITE sent to the trunk
    answered_at: float | None = None  # monotonic, carrier's 200 OK
    hung_up_at: float | None = None
    agent_status: int = 0
    agent_reason: str = ""
    ended_by: Ended | None = None
    finished: bool = False
    keys: str = ""  # the agent's last DTMF digits
    keys_at: float = 0.0
    paused_at: float | None = None  # monotonic, while card details are being read
    pauses: list[tuple[float, float]] = field(default_factory=list)  # monotonic
    sizes: dict[str, tuple[int, float]] = field(default_factory=dict)  # party: (bytes, since)
    alerts: int = 0
    held_by: str | None = None  # "agent" | "carrier": whose hold is relayed to the other leg
    held_at: float | None = None  # monotonic
    holds: list[tuple[float, float]] = field(default_factory=list)  # monotonic
    hold_retry_at: float | None = None  # a relay PJSIP refused (a re-INVITE under way): retry

    def label(self) -> dict[str, str]:
        return {"call_id": self.id, "number": mask(self.e164)}


def _header(name: str, value: str) -> pj.SipHeader:
    h = pj.SipHeader()
    h.hName = name
    h.hValue = value
    return h


def _op(code: int, reason: str = "", headers: Sequence[tuple[str, str]] = ()) -> pj.CallOpParam:
    op = pj.CallOpParam(True)
    op.statusCode = code
    if reason:
        op.reason = reason
    for name, value in headers:
        op.txOption.headers.append(_header(name, value))
    return op


DECISION_UNAVAILABLE = "decision_unavailable"  # dialer.decision names the rule the same


def _unavailable(exc: Exception, session: _Session) -> str:
    """Why a decision that raised refused the call, as the agent and the booking read it."""
    if isinstance(exc, DialerError):
        log.error("b2bua: call not placed: %s", exc, extra=session.label())
        return str(exc)
    log.exception("b2bua: call policy failed, call not placed", extra=session.label())
    return "the call policy failed; the call is not placed"


def _token(text: str, limit: int = 200) -> str:
    """Safe inside a quoted-string header parameter (Warning, Reason) or a reason phrase."""
    return "".join(c if c.isprintable() and c not in '"\\' else " " for c in text)[:limit]


#: A refusal's reason is whole in the Warning header up to this many characters: every
#: reason the call policy writes fits (the longest is about 300), and a response stays
#: one UDP datagram.
REASON_LIMIT = 800
# How the call policy ends a refusal (dialer/policy.py `decide`), and how a number's
# learned status says when its re-check interval ends (dialer/number_status.py).
_NEXT_ALLOWED = re.compile(r"Next allowed: (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) \(([^)]+)\)")
_RECHECK_ENDS = re.compile(r"ends at (\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})\S*?(Z|[+-]\d{2}:\d{2})\b")


def refusal_phrase(rule: str, reason: str) -> str:
    """The 403's reason phrase, what a softphone shows: the rule and the next allowed time.

    e.g. `Refused daily_cap, next allowed 2026-11-25 08:00 Asia/Shanghai`; the
    whole reason is in the Warning header beside it.
    """
    when = ""
    if found := _NEXT_ALLOWED.search(reason):
        when = f"{found[1]} {found[2]}"
    elif found := _RECHECK_ENDS.search(reason):
        zone = "UTC" if found[3] in ("Z", "+00:00") else f"UTC{found[3]}"
        when = f"{found[1]} {found[2]} {zone}"
    return _token(f"Refused {rule}" + (f", next allowed {when}" if when else ""), 120)


# Media states in which a leg's audio is in the conference bridge.
_BRIDGED = frozenset(
    {pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_LOCAL_HOLD, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD}
)

#: A source refused at the door is logged at most once per this many seconds, and the
#: sources remembered for that are capped (a scan from many addresses stays bounded).
REFUSAL_LOG_INTERVAL_S = 60.0
REFUSAL_LOG_SOURCES = 4096

# Carrier failures the agent's softphone should see as is; anything else becomes
# something the softphone cannot misread (401/407 would make it prompt for a password).
_RELAYED = frozenset(range(400, 700)) - {401, 407}


#: How long `run` lets PJSIP wait for a SIP event. A SIP message ends the wait at once; what
#: may wait this long is the once- and twice-a-second chores (click-to-call queue, call
#: commands, recorder watch) and callbacks pjsua2 queues from its media thread (DTMF). At
#: 20 ms, 100 idle workers cost 72% of a core, at 100 ms 34% (bench/README.md).
RUN_POLL_MS = 100


class B2bua:
    """One pjsua2 endpoint bridging agents' calls to the carrier trunk, recording both parties.

    Create it, then call `poll()` from the same thread (or `run(stop)`), since
    PJSIP runs on the creating thread only. `credentials(username)` returns the
    stored HA1s or None; `decide(e164, request_id, call_id, agent)` is the call
    policy, which books an allowed call as in flight, and an exception from it
    refuses the call (503). `on_finished` gets one CallRecord per authenticated
    attempt, always from the one merge thread, after both legs are gone and the
    stereo file (if any) is complete: it may block without stalling SIP.
    """

    def __init__(
        self,
        config: B2buaConfig,
        credentials: Callable[[str], Credential | None],
        decide: Decide,
        on_finished: Callable[[CallRecord], None],
        *,
        throttle: FailureThrottle | None = None,
        clock: Callable[[], float] = time.time,
        on_load: Callable[[int], None] | None = None,
        note_fields: Callable[[str], dict[str, str]] | None = None,
        caller_id_usable: Callable[[str, str], bool] | None = None,
        next_request: Callable[[], tuple[int, str, str, str] | None] | None = None,
        commands: Callable[[Sequence[str]], Sequence[Command]] | None = None,
        on_event: Callable[[CallEvent], None] | None = None,
    ) -> None:
        if not config.caller_ids:
            raise ValueError("the caller-ID pool is empty: the trunk needs a number to present")
        self.config = config
        self._credentials = credentials
        self._decide = decide
        self._on_finished = on_finished
        self._clock = clock
        self._on_load = on_load
        self._note_fields = note_fields
        self._caller_id_usable = caller_id_usable
        self._next_request = next_request
        self._commands = commands
        self._on_event = on_event
        self._commands_at = 0.0
        self._commands_seen: set[int] = set()  # handed to the event thread, not yet marked
        self._asked_at = 0.0
        self._load = -1
        self._watched_at = 0.0
        self._throttle = throttle or FailureThrottle(time.monotonic)
        self._events: deque[_Event] = deque()
        self._sessions: dict[str, _Session] = {}
        self._legs: set[_Leg] = set()  # every pj.Call alive, so Python keeps them referenced
        self._merger = ThreadPoolExecutor(1, thread_name_prefix="b2bua-merge")
        self._caller_ids = itertools.cycle(config.caller_ids)
        self._accounts: dict[str, _Account] = {}
        self._edge_account: _Account | None = None
        self._refusals_logged: dict[str, float] = {}  # source: monotonic, last line about it
        self._overload_logged = 0.0
        self._closed = False
        self._ep = pj.Endpoint()
        self._logger = _MaskingLogBridge()  # referenced here: pjsua2 keeps no reference
        try:
            start_endpoint(
                self._ep,
                config.host,
                config.port,
                version=config.version,
                writer=self._logger,
                clock_rate=config.clock_rate,
            )
            # The front account takes incoming calls; one account per caller ID puts
            # that number in the trunk INVITE's From.
            self._front = self._account("dialguard", default=True)
            for cid in config.caller_ids:
                self._accounts[cid] = self._account(cid, default=False)
            if config.edge is not None:  # click-to-call rings the agent through the edge
                self._edge_account = self._account("dialguard-c2c", default=False)
            self._overload = OverloadGuard(on_refused=self._overloaded)
        except BaseException:
            self.close()
            raise

    def _account(self, user: str, *, default: bool) -> _Account:
        account = _Account(self)
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@{self.config.host}:{self.config.port}"
        cfg = self.config
        if cfg.rtp_port:
            acfg.mediaConfig.transportConfig.port = cfg.rtp_port
            acfg.mediaConfig.transportConfig.portRange = cfg.rtp_port_range
        if (default or user == "dialguard-c2c") and cfg.srtp.enabled:
            # The agents' side: SRTP keyed with SDES whenever the softphone offers it
            # (click-to-call offers it too); whether an agent's plain RTP is refused is
            # decided per call (_media_refused, 488).
            # No secure signalling is demanded of the hop itself: behind the edge every
            # INVITE arrives over the edge's UDP, and the edge names the softphone's.
            # The callers' accounts (the trunk leg) keep pjsua's default: plain RTP.
            acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_OPTIONAL
            acfg.mediaConfig.srtpSecureSignaling = 0
            acfg.mediaConfig.srtpOpt.keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)
        if user == "dialguard-c2c" and cfg.edge is not None:
            # Loose-routed to the edge, which looks up where the agent's softphone is.
            acfg.sipConfig.proxies.append(f"sip:{cfg.edge.proxy};lr;transport=udp")
        elif not default and cfg.trunk_username is not None and cfg.trunk_password is not None:
            # Realm "*": whatever realm the carrier challenges in (401 or 407), PJSIP
            # answers with this login once; a second challenge ends the call as refused.
            acfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", cfg.trunk_username, 0, cfg.trunk_password)
            )
        account.create(acfg, default)
        return account

    # --- loop ----------------------------------------------------------------------------

    def poll(self, timeout_ms: int = 20) -> None:
        """Run PJSIP for up to `timeout_ms`, then act on what it reported."""
        self._ep.libHandleEvents(timeout_ms)
        while self._events:
            event = self._events.popleft()
            try:
                self._handle(event)
            except Exception:
                log.exception("b2bua: failed handling %s", event.kind)
        self._check_timeouts()
        self._watch_recorders()
        self._take_request()
        self._take_commands()
        if self._on_load is not None and len(self._legs) != self._load:
            self._load = len(self._legs)
            self._on_load(self._load)

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.poll(RUN_POLL_MS)
        finally:
            self.close()

    @property
    def live_legs(self) -> int:
        """Call legs PJSIP still holds: zero once every call has fully ended (no orphans)."""
        return len(self._legs)

    def close(self) -> None:
        """Hang up every call (both legs), finish their recordings, then stop PJSIP."""
        if self._closed:
            return
        self._closed = True
        if self._ep.libGetState() == pj.PJSUA_STATE_RUNNING:
            self._hand_over_unanswered()
            self._mark_ended_by_us()
            self._ep.hangupAllCalls()
            deadline = time.monotonic() + 5
            while self._legs and time.monotonic() < deadline:
                self.poll(20)
        self._merger.shutdown(wait=True)
        accounts = [
            *self._accounts.values(),
            getattr(self, "_front", None),
            getattr(self, "_edge_account", None),
        ]
        for account in accounts:
            if account is not None:
                account.shutdown()
        self._accounts.clear()
        # A pj.Call destroyed after libDestroy asserts inside pjsua (SIGABRT):
        # drop every one we hold and collect them while the library still runs.
        self._events.clear()
        self._legs.clear()
        self._sessions.clear()
        gc.collect()
        self._ep.libDestroy()

    def _hand_over_unanswered(self) -> None:
        """A stopping worker answers 503 to calls still ringing and to new ones.

        The edge passes a 503 to another worker (on this host or another), so
        a call that arrived as the worker was told to stop is set up there
        instead of failing with pjsua's hang-up code.
        """
        overload = getattr(self, "_overload", None)
        if overload is not None:
            overload.draining = True
        for session in list(self._sessions.values()):
            if session.answered_at is None and session.ended_by is None:
                self._end_agent(session, 503, "Service Unavailable", Ended.DIALGUARD)

    def _mark_ended_by_us(self) -> None:
        # A method of its own on purpose: a loop variable left in close() would keep
        # a session, and so its pj.Call objects, alive past libDestroy, and a
        # pj.Call destroyed after libDestroy aborts the process inside pjsua.
        for session in self._sessions.values():
            session.ended_by = session.ended_by or Ended.DIALGUARD

    # --- events --------------------------------------------------------------------------

    def _handle(self, event: _Event) -> None:
        if event.kind == "incoming":
            self._legs.add(event.leg)
            try:
                self._incoming(event)
            except Exception:  # a leg left unanswered would hold a call slot for good
                log.exception("b2bua: an incoming call could not be handled; refused")
                if event.leg.session is None:
                    self._refuse(event.leg, 500, "Server Internal Error")
            return
        leg = event.leg
        if event.kind == "state":
            leg.state = event.state
            if event.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self._legs.discard(leg)
                if leg.refusal is not None:
                    self._report(leg.refusal)
                    leg.refusal = None
        session = leg.session
        if session is None:  # a leg refused at the door (401/403): nothing else to do
            return
        if event.kind == "media":
            self._bridge(session)
            self._relay_hold(session)
        elif event.kind == "dtmf":
            if leg is session.agent_leg:  # the debtor's keys never steer the recording
                self._agent_key(session, event.msg)
        elif leg is session.agent_leg:
            self._agent_state(session, event)
        else:
            self._trunk_state(session, event)
        self._maybe_finish(session)

    def _incoming(self, event: _Event) -> None:
        leg, cfg = event.leg, self.config
        source = host_of(event.source)
        try:
            request = parse_request(event.msg)
        except ValueError:
            self._refuse(leg, 400, "Bad Request")
            return
        agent = self._authenticate(leg, request, source)
        if agent is None:
            return
        if self._media_refused(leg, request, event.msg, agent):
            return
        sip_call_id = request.first("call-id") or ""
        sid = secrets.token_hex(8)
        dialed = uri_user(request.uri)
        try:
            e164 = normalize(dialed, cfg.region, allow_vanity=cfg.allow_vanity)
        except MalformedNumber as exc:
            log.info("b2bua: %s", exc, extra={"call_id": sid})
            self._refuse(
                leg, 484, "Address Incomplete", [("Warning", f'399 dialguard "{_token(str(exc))}"')]
            )
            self._record_refusal(leg, sid, sip_call_id, agent, dialed, 484, str(exc), None)
            return
        session = _Session(
            id=sid,
            sip_call_id=sip_call_id,
            agent=agent,
            agent_leg=leg,
            e164=e164,
            started_at=self._clock(),
            started_mono=time.monotonic(),
            client_transport=self._client_transport(request),
        )
        try:  # decides and, when it allows the call, books it as in flight
            allowed, rule, reason = self._decide(e164, None, sid, agent)
        except Exception as exc:  # no answer from the policy is not a yes
            why = _unavailable(exc, session)
            self._refuse(
                leg,
                503,
                "Call Policy Unavailable",
                [
                    ("Retry-After", "30"),
                    ("Warning", f'399 dialguard "{DECISION_UNAVAILABLE}: {_token(why)}"'),
                ],
            )
            self._record_refusal(leg, sid, sip_call_id, agent, e164, 503, why, DECISION_UNAVAILABLE)
            return
        if not allowed:
            log.info("b2bua: refused by policy rule %s", rule, extra=session.label())
            self._refuse(
                leg,
                403,
                refusal_phrase(rule, reason),
                [
                    ("Reason", f'SIP;cause=403;text="dialguard policy {_token(rule)}"'),
                    ("Warning", f'399 dialguard "{_token(rule)}: {_token(reason, REASON_LIMIT)}"'),
                ],
            )
            self._record_refusal(leg, sid, sip_call_id, agent, e164, 403, reason, rule)
            return
        # Fail closed: both recorders exist before anything is sent to the carrier.
        try:
            session.recorders = self._create_recorders(session)
        except (pj.Error, OSError) as exc:
            why = getattr(exc, "reason", None) or str(exc)
            log.error(
                "b2bua: recording unavailable, call not placed: %s", why, extra=session.label()
            )
            self._refuse(
                leg,
                500,
                "Recording Unavailable",
                [("Warning", '399 dialguard "recording unavailable: call not placed"')],
            )
            self._record_refusal(
                leg, sid, sip_call_id, agent, e164, 500, "recording unavailable", rule
            )
            return
        leg.session = session
        self._sessions[sid] = session
        self._call_event(session, "started")
        self._place_trunk_call(session)

    def originate(self, request_id: int, agent: str, contact: str, e164: str) -> None:
        """Click-to-call: ring the agent's softphone, dial `e164` once answered.

        Behind an edge the INVITE goes to the edge for `sip:<agent>@<realm>`,
        marked as the edge marks what it sends us, and the edge finds the
        softphone (its location table is the truth, `contact` only a hint);
        standalone, it goes to `contact`. The same checks as a softphone's own
        call, before anything rings: the policy for the number, then both
        recorders (fail closed).
        """
        sid = secrets.token_hex(8)
        cfg = self.config
        account = self._edge_account if self._edge_account is not None else self._front
        session = _Session(
            id=sid,
            sip_call_id="",
            agent=agent,
            agent_leg=_Leg(self, account, pj.PJSUA_INVALID_ID),
            e164=e164,
            started_at=self._clock(),
            started_mono=time.monotonic(),
            outbound=True,
            request_id=request_id,
        )

        def refuse(code: int, why: str, rule: str | None) -> None:
            record = CallRecord(
                call_id=sid,
                sip_call_id="",
                agent=agent,
                number=mask(e164),
                caller_id=None,
                started_at=session.started_at,
                answered=False,
                duration_s=0.0,
                sip_status=code,
                sip_reason=why,
                ended_by=Ended.DIALGUARD,
                rule=rule,
                recording=None,
                e164=e164,
                request_id=request_id,
            )
            self._report(record)

        try:
            allowed, rule, reason = self._decide(e164, request_id, sid, agent)
        except Exception as exc:
            refuse(503, _unavailable(exc, session), DECISION_UNAVAILABLE)
            return
        if not allowed:
            log.info("b2bua: click-to-call refused by rule %s", rule, extra=session.label())
            refuse(403, reason, rule)
            return
        try:
            session.recorders = self._create_recorders(session)
        except (pj.Error, OSError):
            log.error("b2bua: recording unavailable, call not placed", extra=session.label())
            refuse(500, "recording unavailable", rule)
            return
        leg = session.agent_leg
        leg.session = session
        op = pj.CallOpParam(True)
        op.opt.audioCount = 1
        op.opt.videoCount = 0
        target = contact
        if cfg.edge is not None:
            target = f"sip:{agent}@{cfg.realm}"
            # Our own Call-ID, so the mark over it can go in the INVITE that carries it.
            session.sip_call_id = f"{secrets.token_hex(12)}@dialguard"
            op.opt.customCallId = session.sip_call_id
            stamp = trust.mark(cfg.edge.secret, int(self._clock()), session.sip_call_id, agent)
            op.txOption.headers.append(_header(trust.AGENT_HEADER, agent))
            op.txOption.headers.append(_header(trust.MARK_HEADER, stamp))
        try:
            leg.makeCall(target, op)
        except pj.Error as exc:
            log.error("b2bua: cannot ring the agent: %s", exc.reason, extra=session.label())
            leg.session = None
            self._drop_recorders(session.recorders)
            note_path(self.config.recording_dir / f"{sid}.wav").unlink(missing_ok=True)
            refuse(480, "agent's softphone unreachable", None)
            return
        self._legs.add(leg)
        self._sessions[sid] = session
        self._call_event(session, "started")
        log.info("b2bua: ringing the agent for click-to-call", extra=session.label())

    def _authenticate(self, leg: _Leg, request: SipRequest, source: str) -> str | None:
        """The agent's username, or None once the leg has been answered 401 or 403.

        Behind an edge the edge alone authenticates: the call must come from
        one of its addresses with its mark, and nothing is ever challenged
        here, so a worker port found around the edge yields no login to guess.
        """
        cfg = self.config
        if cfg.edge is not None:
            agent = request.first(trust.AGENT_HEADER)
            if source in cfg.edge.addresses and trust.verify(
                cfg.edge.secret,
                request.first(trust.MARK_HEADER),
                request.first("call-id") or "",
                agent,
                self._clock(),
            ):
                return agent
            self._refuse_quietly(source, "not from the edge, or without its mark")
            self._refuse(leg, 403, "Forbidden")
            return None
        login = check_login(
            request.all("authorization"),
            method="INVITE",
            uri=request.uri,
            source=source,
            realm=cfg.realm,
            secret=cfg.secret,
            algorithms=cfg.algorithms,
            nonce_lifetime_s=cfg.nonce_lifetime_s,
            credentials=self._credentials,
            throttle=self._throttle,
            now=self._clock(),
        )
        if login.challenge:
            self._refuse(leg, 401, "Unauthorized", login.challenge)
        elif login.refusal is not None:
            self._refuse(leg, 403, login.refusal)
        return login.agent

    def _refuse_quietly(self, source: str, why: str) -> None:
        """Log a refused source at most once a minute: a scan must not flood the log."""
        now = time.monotonic()
        last = self._refusals_logged.get(source)
        if last is not None and now - last < REFUSAL_LOG_INTERVAL_S:
            return
        if len(self._refusals_logged) >= REFUSAL_LOG_SOURCES:  # forget the quiet ones
            self._refusals_logged = {
                k: t for k, t in self._refusals_logged.items() if now - t < REFUSAL_LOG_INTERVAL_S
            }
        self._refusals_logged[source] = now
        log.warning(
            "b2bua: INVITE from %s refused (403): %s; said once a minute per source", source, why
        )

    def _overloaded(self, refused: int) -> None:
        now = time.monotonic()
        if now - self._overload_logged >= REFUSAL_LOG_INTERVAL_S:
            self._overload_logged = now
            log.info("b2bua: full, new calls answered 503 (%d so far)", refused)

    def _client_transport(self, request: SipRequest) -> str:
        """udp, tcp or tls: the edge's word for it behind an edge (it replaces any
        client's), else the top Via; a client alone cannot claim TLS it did not use."""
        edge_says = request.first(trust.TRANSPORT_HEADER) if self.config.edge is not None else None
        return client_transport(request.all("via"), edge_says)

    def _refuse(
        self, leg: _Leg, code: int, reason: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        try:
            leg.hangup(_op(code, reason, headers))
        except pj.Error as exc:  # the caller gave up already
            log.debug("b2bua: refusing a call failed: %s", exc.reason)

    def _record_refusal(
        self,
        leg: _Leg,
        sid: str,
        sip_call_id: str,
        agent: str,
        number: str,
        code: int,
        why: str,
        rule: str | None,
    ) -> None:
        leg.refusal = CallRecord(
            call_id=sid,
            sip_call_id=sip_call_id,
            agent=agent,
            number=mask(number),
            caller_id=None,
            started_at=self._clock(),
            answered=False,
            duration_s=0.0,
            sip_status=code,
            sip_reason=why,
            ended_by=Ended.DIALGUARD,
            rule=rule,
            recording=None,
            e164=number,
        )
        if leg not in self._legs:  # already gone (the agent gave up first)
            self._report(leg.refusal)
            leg.refusal = None

    def _create_recorders(self, session: _Session) -> list[_Recorder]:
        """Both parties' recorders, and a note of whose call it is.

        The note (`<call id>.json`) lets a restarted dialer store what a killed
        one left behind under the right agent and time.
        """
        directory, sid = self.config.recording_dir, session.id
        if not os.access(directory, os.W_OK | os.X_OK):  # pjmedia's error is less clear
            raise OSError(f"recording directory {directory} is not writable")
        made: list[_Recorder] = []
        note = directory / f"{sid}.json"
        try:
            note.write_text(
                json.dumps(
                    {
                        "call_id": sid,
                        "agent": session.agent,
                        "started_at": session.started_at,
                        **(self._note_fields(session.e164) if self._note_fields else {}),
                    }
                )
            )
            for party in ("agent", "debtor"):
                path = directory / f"{sid}-{party}.wav"
                port = pj.AudioMediaRecorder()
                port.createRecorder(str(path))
                made.append(_Recorder(party, path, port))
        except BaseException:
            self._drop_recorders(made)
            note.unlink(missing_ok=True)
            raise
        return made

    def _next_caller_id(self, session: _Session) -> str | None:
        """The next caller ID of the pool still in the rotation, or None if none is.

        The check also puts the caller ID on the call's reservation, so a caller
        ID on trial after its cool-off carries one call at a time. A check that
        fails (the database) takes no caller ID: nothing is dialed unchecked.
        """
        for _ in range(len(self.config.caller_ids)):
            cid = next(self._caller_ids)
            if self._caller_id_usable is None:
                return cid
            try:
                if self._caller_id_usable(cid, session.id):
                    return cid
            except Exception:
                log.exception("b2bua: caller-ID check failed", extra=session.label())
                return None
        return None

    def _place_trunk_call(self, session: _Session) -> None:
        cid = self._next_caller_id(session)
        if cid is None:
            log.error("b2bua: every caller ID is out of the rotation", extra=session.label())
            self._end_agent(session, 503, "No Caller ID Available", Ended.DIALGUARD)
            return
        session.caller_id = cid
        trunk = _Leg(self, self._accounts[cid], pj.PJSUA_INVALID_ID)
        trunk.session = session
        op = pj.CallOpParam(True)
        op.opt.audioCount = 1
        op.opt.videoCount = 0
        op.txOption.headers.append(
            _header("P-Asserted-Identity", f"<sip:{cid}@{self.config.host}>")
        )
        try:
            session.dialed_at = time.monotonic()
            trunk.makeCall(f"sip:{session.e164}@{self.config.trunk}", op)
        except pj.Error as exc:
            log.error("b2bua: trunk call failed to start: %s", exc.reason, extra=session.label())
            self._end_agent(session, 503, "Trunk Unavailable", Ended.DIALGUARD)
            return
        session.trunk_leg = trunk
        self._legs.add(trunk)
        log.info("b2bua: dialing via trunk as %s", cid, extra=session.label())

    # --- state relays ----------------------------------------------------------------------

    def _agent_state(self, session: _Session, event: _Event) -> None:
        if (
            session.outbound
            and event.state == pj.PJSIP_INV_STATE_CONFIRMED
            and session.trunk_leg is None
            and session.ended_by is None
        ):
            log.info("b2bua: agent answered, dialing", extra=session.label())
            self._place_trunk_call(session)
            return
        if event.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            return
        if session.ended_by is None:
            session.ended_by = Ended.AGENT
            session.agent_status = session.agent_status or event.status
            session.agent_reason = session.agent_reason or event.reason
            log.info("b2bua: agent ended the call (%s)", event.status, extra=session.label())
        self._mark_hangup(session)
        self._hangup(session.trunk_leg)  # CANCEL before answer, BYE after

    def _trunk_state(self, session: _Session, event: _Event) -> None:
        agent = session.agent_leg
        if event.state == pj.PJSIP_INV_STATE_EARLY and event.status == 180:
            self._provisional(session, 180, "Ringing")
        elif event.state == pj.PJSIP_INV_STATE_CONFIRMED:
            if agent not in self._legs:  # answered just as the agent gave up: end it
                self._hangup(session.trunk_leg)
                return
            if session.answered_at is None:
                session.answered_at = time.monotonic()
                log.info("b2bua: answered", extra=session.label())
            if session.outbound:  # the agent's leg is up already: nothing to answer
                session.agent_status, session.agent_reason = 200, "OK"
            elif agent.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                try:
                    agent.answer(_op(200))
                    session.agent_status, session.agent_reason = 200, "OK"
                except pj.Error as exc:
                    log.warning(
                        "b2bua: agent gone at answer: %s", exc.reason, extra=session.label()
                    )
                    self._hangup(session.trunk_leg)
        elif event.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._mark_hangup(session)
            if session.ended_by is None:
                session.ended_by = Ended.CARRIER
            if session.answered_at is not None:
                log.info("b2bua: carrier ended the call", extra=session.label())
                self._hangup(agent)
            else:
                code = event.status if event.status in _RELAYED else 503
                reason = event.reason if code == event.status else "Trunk Failure"
                log.info(
                    "b2bua: carrier refused %s %s",
                    event.status,
                    event.reason,
                    extra=session.label(),
                )
                self._end_agent(session, code, reason, session.ended_by)

    def _provisional(self, session: _Session, code: int, reason: str) -> None:
        if session.outbound or session.provisional >= code or session.answered_at is not None:
            return
        try:
            session.agent_leg.answer(_op(code, reason))
            session.provisional = code
        except pj.Error as exc:
            log.debug("b2bua: relaying %s failed: %s", code, exc.reason)

    def _end_agent(self, session: _Session, code: int, reason: str, by: Ended) -> None:
        session.ended_by = session.ended_by or by
        if not session.agent_status or session.agent_status < 200:
            session.agent_status, session.agent_reason = code, reason
        self._hangup(session.agent_leg, code, reason)

    def _hangup(self, leg: _Leg | None, code: int = 0, reason: str = "") -> None:
        if leg is None or leg.state == pj.PJSIP_INV_STATE_DISCONNECTED or leg not in self._legs:
            return
        try:
            leg.hangup(_op(code, reason) if code else pj.CallOpParam(True))
        except pj.Error as exc:
            log.debug("b2bua: hangup failed: %s", exc.reason)

    def _mark_hangup(self, session: _Session) -> None:
        if session.hung_up_at is None:
            session.hung_up_at = time.monotonic()

    # --- media ---------------------------------------------------------------------------------

    def _media_refused(self, leg: _Leg, request: SipRequest, message: str, agent: str) -> bool:
        """Refuse (488) an offer the SRTP policy does not allow over the softphone's transport.

        After the login, so an unauthenticated caller learns nothing of the
        policy; before the number and the trunk, so nothing is dialed for it.
        """
        transport = self._client_transport(request)
        media = decide_media(self.config.srtp, transport, sdp_body(message))
        if media.verdict is not Verdict.REFUSE:
            log.debug("b2bua: agent media: %s", media.why)
            return False
        log.info("b2bua: media offer of %s refused: %s", agent, media.why)
        self._refuse(
            leg, 488, "Not Acceptable Here", [("Warning", f'399 dialguard "{_token(media.why)}"')]
        )
        return True

    @staticmethod
    def _audio(leg: _Leg | None) -> pj.AudioMedia | None:
        if leg is None or leg.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            return None
        try:
            info = leg.getInfo()
            for i, media in enumerate(info.media):
                # On hold too: the stream stays in the bridge (silent), so the
                # recording runs on through a hold instead of skipping it.
                if (
                    media.type == pj.PJMEDIA_TYPE_AUDIO
                    and media.status in _BRIDGED
                    and media.audioConfSlot >= 0
                ):
                    return leg.getAudioMedia(i)
        except pj.Error:
            return None
        return None

    @staticmethod
    def _remote_hold(leg: _Leg | None) -> bool:
        """Whether the party on this leg has put us on hold (sendonly or inactive)."""
        if leg is None or leg.state != pj.PJSIP_INV_STATE_CONFIRMED:
            return False
        try:
            info = leg.getInfo()  # held while its media are read: SWIG frees a temporary
            for media in info.media:
                if media.type != pj.PJMEDIA_TYPE_AUDIO:
                    continue
                if media.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD:
                    return True
                # inactive: no direction at all, and not because we held it ourselves
                return bool(media.status == pj.PJSUA_CALL_MEDIA_NONE and media.dir == 0)
        except pj.Error:
            return False
        return False

    def _relay_hold(self, session: _Session) -> None:
        """A hold on one leg is relayed to the other as a re-INVITE (sendonly), and back.

        Only a change of hold is relayed: a session refresh (re-INVITE or UPDATE
        with the same media) is answered by PJSIP on its own leg and goes no
        further. Our own hold shows as LOCAL_HOLD on the other leg, which is
        never mistaken for that party holding, so nothing loops.
        """
        session.hold_retry_at = None
        if session.answered_at is None or session.hung_up_at is not None:
            return
        now = time.monotonic()
        if session.held_by is None:
            if self._remote_hold(session.agent_leg):
                holder, other = "agent", session.trunk_leg
            elif self._remote_hold(session.trunk_leg):
                holder, other = "carrier", session.agent_leg
            else:
                return
            if self._reinvite(session, other, hold=True):
                session.held_by, session.held_at = holder, now
                log.info("b2bua: the %s put the call on hold", holder, extra=session.label())
            return
        own = session.agent_leg if session.held_by == "agent" else session.trunk_leg
        if self._remote_hold(own):
            return  # still on hold (a refresh while held changes nothing)
        other = session.trunk_leg if session.held_by == "agent" else session.agent_leg
        if self._reinvite(session, other, hold=False):
            log.info("b2bua: the %s resumed the call", session.held_by, extra=session.label())
            session.holds.append((session.held_at or now, now))
            session.held_by, session.held_at = None, None

    def _reinvite(self, session: _Session, leg: _Leg | None, *, hold: bool) -> bool:
        """Hold or resume `leg`; False (and a retry soon) while PJSIP cannot send it yet."""
        if leg is None or leg.state != pj.PJSIP_INV_STATE_CONFIRMED:
            return False
        op = pj.CallOpParam(True)
        try:
            if hold:
                leg.setHold(op)
            else:
                op.opt.flag |= pj.PJSUA_CALL_UNHOLD
                leg.reinvite(op)
        except pj.Error as exc:  # e.g. a re-INVITE of theirs still under way on that leg
            log.debug("b2bua: relaying the hold failed: %s", exc.reason, extra=session.label())
            session.hold_retry_at = time.monotonic() + 0.5
            return False
        return True

    def _bridge(self, session: _Session) -> None:
        """Connect both directions and each party's recorder once both legs have audio.

        Early media (183 with SDP from the carrier) is relayed by answering the
        agent 183 first, so the debtor's side is heard (and recorded) from then on.
        """
        trunk_audio = self._audio(session.trunk_leg)
        if trunk_audio is None:
            return
        if session.answered_at is None and session.provisional < 183:
            self._provisional(session, 183, "Session Progress")
        agent_audio = self._audio(session.agent_leg)
        if agent_audio is None:
            return
        agent_audio.startTransmit(trunk_audio)
        trunk_audio.startTransmit(agent_audio)
        # The null sound device's capture port (silence) feeds every recorder too: a
        # re-INVITE may replace a leg's stream, and a recorder left with no source for
        # a moment writes nothing, which would shift everything after it in the merge.
        silence = self._ep.audDevManager().getCaptureDevMedia()
        for rec, source in zip(session.recorders, (agent_audio, trunk_audio), strict=True):
            if rec.port is not None:
                source.startTransmit(rec.port)
                silence.startTransmit(rec.port)
                if rec.started is None:
                    rec.started = time.monotonic()

    # --- teardown ------------------------------------------------------------------------------

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for session in list(self._sessions.values()):
            if session.hold_retry_at is not None and now >= session.hold_retry_at:
                self._relay_hold(session)
            if (
                session.answered_at is None
                and session.ended_by is None
                and now - session.started_mono > self.config.ring_timeout_s
            ):
                log.info(
                    "b2bua: no answer within %.0f s",
                    self.config.ring_timeout_s,
                    extra=session.label(),
                )
                self._end_agent(session, 480, "No Answer", Ended.DIALGUARD)
                self._hangup(session.trunk_leg)

    def _take_request(self) -> None:
        """Claim a queued click-to-call when this worker has room for one more call."""
        now = time.monotonic()
        if self._next_request is None or now - self._asked_at < 0.5:
            return
        if len(self._legs) > 2 or self._overload.full():  # no room for both legs of a call
            return
        self._asked_at = now
        try:
            claimed = self._next_request()
        except Exception:
            log.exception("b2bua: reading the click-to-call queue failed")
            return
        if claimed is not None:
            self.originate(*claimed)

    # --- pause for card data, and the recorder watchdog -------------------------------------

    def _agent_key(self, session: _Session, digit: str) -> None:
        """`*7` pauses both recorders, `*8` resumes: PCI DSS forbids recording card data."""
        now = time.monotonic()
        if now - session.keys_at > 3.0:  # a code is typed in one go
            session.keys = ""
        session.keys, session.keys_at = (session.keys + digit)[-2:], now
        if session.keys == PAUSE_KEYS:
            self._pause(session, session.agent, "keypad")
        elif session.keys == RESUME_KEYS:
            self._resume(session, session.agent, "keypad")

    def _pause(
        self, session: _Session, actor: str, source: str, command_id: int | None = None
    ) -> bool:
        """Mute both recorders; the one way a pause happens, from the keypad or the API."""
        if session.paused_at is not None:
            return False
        now = time.monotonic()
        self._set_recording_level(session, 0.0)
        session.paused_at = now
        log.info("b2bua: recording paused (%s, by %s)", source, actor, extra=session.label())
        self._call_event(session, "pause", actor, source, now, command_id)
        return True

    def _resume(
        self, session: _Session, actor: str, source: str, command_id: int | None = None
    ) -> bool:
        if session.paused_at is None:
            return False
        now = time.monotonic()
        self._set_recording_level(session, 1.0)
        session.pauses.append((session.paused_at, now))
        session.paused_at = None
        log.info("b2bua: recording resumed (%s, by %s)", source, actor, extra=session.label())
        self._call_event(session, "resume", actor, source, now, command_id)
        return True

    def _call_event(
        self,
        session: _Session,
        kind: str,
        actor: str = "",
        source: str = "",
        mono: float | None = None,
        command_id: int | None = None,
        detail: str = "",
    ) -> None:
        if self._on_event is None:
            return
        starts = [r.started for r in session.recorders if r.started is not None]
        offset = round(max(0.0, mono - min(starts)), 2) if mono is not None and starts else None
        event = CallEvent(
            kind=kind,
            call_id=session.id,
            agent=session.agent,
            at=self._clock(),
            actor=actor,
            source=source,
            offset_s=offset,
            command_id=command_id,
            detail=detail,
        )
        # On the merge thread, like `on_finished`: the owner may write to its database
        # without stalling SIP, and sees a call's events in order, its end last.
        self._merger.submit(self._emit_event, event)

    def _emit_event(self, event: CallEvent) -> None:
        assert self._on_event is not None
        try:
            self._on_event(event)
        except Exception:
            log.exception("b2bua: on_event failed", extra={"call_id": event.call_id})

    def _take_commands(self) -> None:
        """Apply queued commands to this worker's calls, read at most twice a second."""
        now = time.monotonic()
        if self._commands is None or not self._sessions or now - self._commands_at < 0.5:
            return
        self._commands_at = now
        try:
            pending = self._commands(list(self._sessions))
        except Exception:
            log.exception("b2bua: reading the call commands failed")
            return
        self._commands_seen &= {c.id for c in pending}  # the rest were marked done
        for command in pending:
            if command.id in self._commands_seen:
                continue
            self._commands_seen.add(command.id)
            session = self._sessions.get(command.call_id)
            if session is None:
                continue
            if session.hung_up_at is not None:
                applied, why = False, "the call has ended"
            elif command.action == "pause":
                applied = self._pause(session, command.actor, "api", command.id)
                why = "the recording is already paused"
            elif command.action == "resume":
                applied = self._resume(session, command.actor, "api", command.id)
                why = "the recording is not paused"
            else:
                applied, why = False, f"unknown command {command.action!r}"
            if not applied:
                self._call_event(session, "refused", command.actor, "api", None, command.id, why)

    @staticmethod
    def _set_recording_level(session: _Session, level: float) -> None:
        # Muted rather than disconnected: the recorders keep writing (silence), so
        # both channels stay aligned and the gap sits where it happened.
        for rec in session.recorders:
            if rec.port is not None:
                try:
                    rec.port.adjustRxLevel(level)
                except pj.Error as exc:
                    log.error(
                        "b2bua: pausing the recording failed: %s", exc.reason, extra=session.label()
                    )

    def _watch_recorders(self) -> None:
        """Alert when a running call's recording stops growing or its file is gone."""
        now = time.monotonic()
        if now - self._watched_at < 1.0:
            return
        self._watched_at = now
        for session in self._sessions.values():
            for rec in session.recorders:
                if rec.started is None or session.hung_up_at is not None:
                    continue
                try:
                    size = rec.path.stat().st_size
                except OSError:
                    size = -1
                entry = session.sizes.get(rec.party)
                if entry is None or (size >= 0 and size != entry[0]):
                    session.sizes[rec.party] = (size, now)
                    continue
                since = entry[1]
                if now - since >= self.config.watchdog_s:
                    session.alerts += 1
                    session.sizes[rec.party] = (size, now)  # alert again if it stays stuck
                    log.error(
                        "ALERT recorder stalled: the %s side of a running call has not been "
                        "written for %.0f s%s",
                        rec.party,
                        now - since,
                        " (its file is gone)" if size < 0 else "",
                        extra={**session.label(), "event": "recorder_stalled"},
                    )

    @staticmethod
    def _file_spans(
        session: _Session,
        spans: list[tuple[float, float]],
        open_since: float | None,
        stopped: float,
    ) -> tuple[tuple[float, float], ...]:
        """Pauses or holds as seconds into the stereo file (zero: the first recorder connected)."""
        starts = [r.started for r in session.recorders if r.started is not None]
        if not starts:
            return ()
        zero = min(starts)
        spans = [*spans]
        if open_since is not None:  # hung up while paused (or held)
            spans.append((open_since, stopped))
        return tuple((round(max(0.0, a - zero), 2), round(max(0.0, b - zero), 2)) for a, b in spans)

    def _maybe_finish(self, session: _Session) -> None:
        legs = [leg for leg in (session.agent_leg, session.trunk_leg) if leg is not None]
        if session.finished or any(leg in self._legs for leg in legs):
            return
        session.finished = True
        del self._sessions[session.id]
        for leg in legs:  # break the cycle so the pj.Call objects die now, on this thread
            leg.session = None
        stopped = session.hung_up_at or time.monotonic()
        recorders = session.recorders
        self._drop_recorders(recorders, delete_files=False)  # closes the WAVs
        answered = session.answered_at is not None
        duration = stopped - session.answered_at if session.answered_at is not None else 0.0
        rang_until = session.answered_at if session.answered_at is not None else stopped
        ring = rang_until - session.dialed_at if session.dialed_at is not None else 0.0
        status = 200 if answered else session.agent_status or 0
        base = CallRecord(
            call_id=session.id,
            sip_call_id=session.sip_call_id,
            agent=session.agent,
            number=mask(session.e164),
            caller_id=session.caller_id,
            started_at=session.started_at,
            answered=answered,
            duration_s=round(duration, 3),
            ring_s=round(max(ring, 0.0), 3),
            sip_status=status,
            sip_reason="OK" if answered else session.agent_reason,
            ended_by=session.ended_by or Ended.DIALGUARD,
            rule=None,
            recording=None,
            e164=session.e164,
            pauses=self._file_spans(session, session.pauses, session.paused_at, stopped),
            holds=self._file_spans(session, session.holds, session.held_at, stopped),
            recorder_alerts=session.alerts,
            request_id=session.request_id,
            answered_at=(
                session.started_at + (session.answered_at - session.started_mono)
                if session.answered_at is not None
                else None
            ),
        )
        log.info("b2bua: finished %s after %.1f s", status, duration, extra=session.label())
        out = self.config.recording_dir / f"{session.id}.wav"
        self._merger.submit(self._merge_and_emit, base, recorders, out, answered)

    def _merge_and_emit(
        self, base: CallRecord, recorders: list[_Recorder], out: Path, answered: bool
    ) -> None:
        recording: Path | None = None
        early: Path | None = None
        try:
            if answered and any(r.started is not None for r in recorders):
                agent, debtor = recorders
                for rec in recorders:
                    _wait_finalized(rec.path)
                merge_stereo(
                    agent.path,
                    debtor.path,
                    out,
                    left_start=agent.started or 0.0,
                    right_start=debtor.started or 0.0,
                )
                recording = out
        except Exception:
            # Each party's file stays with the note: the next start salvages them.
            log.exception("b2bua: merging the recording failed", extra={"call_id": base.call_id})
        else:
            if not answered and base.caller_id is not None:  # placed, and it failed
                early = _keep_early_media(base, recorders)
            for rec in recorders:
                rec.path.unlink(missing_ok=True)
            if recording is None:  # never answered: nothing to store, the note is done
                note_path(out).unlink(missing_ok=True)
        self._emit(replace(base, recording=recording, early_media=early))

    def _report(self, record: CallRecord) -> None:
        # Through the merge thread, behind any merge still running: `on_finished`
        # is always called from that one thread, one record at a time.
        self._merger.submit(self._emit, record)

    def _emit(self, record: CallRecord) -> None:
        try:
            self._on_finished(record)
        except Exception:
            log.exception("b2bua: on_finished failed", extra={"call_id": record.call_id})

    @staticmethod
    def _drop_recorders(recorders: list[_Recorder], *, delete_files: bool = True) -> None:
        for rec in recorders:
            # Dropping the last reference destroys the pjmedia port, which
            # finishes the WAV header; there is no explicit close in pjsua2.
            rec.port = None
            if delete_files:
                rec.path.unlink(missing_ok=True)


def _keep_early_media(base: CallRecord, recorders: list[_Recorder]) -> Path | None:
    """The carrier's side of a failed call, renamed out of the recorders' way, if it was heard.

    Carriers say why a call fails in early media ("the number you have dialed
    does not exist") and then send a generic 404 or 480; dialer/announcements.py
    transcribes it. Never raises: the call is booked either way.
    """
    debtor = next((r for r in recorders if r.party == "debtor" and r.started is not None), None)
    if debtor is None:
        return None
    kept = debtor.path.with_name(f"{base.call_id}-early.wav")
    try:
        _wait_finalized(debtor.path)
        debtor.path.replace(kept)
    except (OSError, TimeoutError) as exc:
        log.warning("b2bua: early media not kept: %s", exc, extra={"call_id": base.call_id})
        return None
    return kept


def _wait_finalized(path: Path, timeout_s: float = 3.0) -> None:
    """Wait until pjmedia has written the WAV's final header.

    Destroying a recorder only queues its removal from the conference bridge
    (asynchronous since pjproject 2.14); the media clock thread closes the
    file a frame or so later, writing the RIFF sizes last. Reading earlier
    sees a headerless, still-buffered file.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with path.open("rb") as f:
                head = f.read(8)
            size = path.stat().st_size
            if head[:4] == b"RIFF" and int.from_bytes(head[4:8], "little") == size - 8:
                return
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} was not finalised by pjmedia")
        time.sleep(0.02)
