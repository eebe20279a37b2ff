"""The dialer processes: a worker's B2BUA wired to the database, the call policy and the
recording spool, and the front that spreads agents' calls over the workers.

Outside dialer/sip, this is the one dialer module that loads pjsua2 (through
dialer.sip.b2bua); only the SIP processes `dialguard up` starts import it.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import replace

from sqlalchemy.orm import Session, sessionmaker

from dialer.booking import finish_call, store_leftover
from dialer.calls import CallRecord
from dialer.click_to_call import request_claimer
from dialer.decision import caller_id_check, policy_decider
from dialer.live_calls import call_ended, command_reader, event_writer, forget_live_calls
from dialer.numbers import mask, number_key
from dialer.reservations import settle_abandoned
from dialer.sip.b2bua import B2bua
from dialer.sip.config import B2buaConfig
from dialer.sip.front import Front, FrontConfig, WorkerTable
from dialer.sip.salvage import salvage
from dialer.site import CallSite
from dialer.softphones import credential_lookup, registrar

log = logging.getLogger(__name__)


def run(
    config: B2buaConfig,
    site: CallSite,
    stop: threading.Event,
    on_load: Callable[[int], None] | None = None,
    next_request: Callable[[], tuple[int, str, str, str] | None] | None = None,
    worker: int = 0,
) -> None:
    """Salvage what a killed dialer left, then bridge calls until `stop` is set.

    `worker` names this dialer in `live_calls`, and with the host's name in
    the reservations of the calls it carries; each running dialer of a site
    needs its own. At the start, the calls a killed predecessor left in
    flight are booked: with their audio by salvage, the rest as unanswered
    attempts (`settle_abandoned`), so none is lost and none counted twice.
    """
    config.recording_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    label = worker_label(worker)
    saved = salvage(config.recording_dir, store_leftover(site))
    if saved:
        log.warning("stored %d recording(s) left by an interrupted dialer", saved)
    for early in config.recording_dir.glob("*-early.wav"):  # a failed call never booked
        early.unlink(missing_ok=True)
    settle_abandoned(site.sessions, site.clock(), label)
    forget_live_calls(site.sessions, worker, site.clock())

    def finished(record: CallRecord) -> None:
        try:
            finish_call(site, record)
        except Exception:
            log.exception("booking the call failed", extra={"call_id": record.call_id})
            try:  # the call is over either way: no command may wait for it
                with site.sessions() as session:
                    call_ended(session, record.call_id, site.clock())
                    session.commit()
            except Exception:
                log.exception("clearing the ended call failed", extra={"call_id": record.call_id})

    def note_fields(e164: str) -> dict[str, str]:
        return {"number_key": number_key(site.number_secret, e164), "number_masked": mask(e164)}

    b2b = B2bua(
        config,
        credential_lookup(site.sessions),
        policy_decider(site, label),
        finished,
        on_load=on_load,
        note_fields=note_fields,
        caller_id_usable=caller_id_check(site),
        next_request=next_request,
        commands=command_reader(site.sessions),
        on_event=event_writer(site.sessions, worker),
    )
    log.info("dialer bridging calls on %s:%d", config.host, config.port)
    b2b.run(stop)


#: Each worker's RTP ports: RTP_SPAN from RTP_BASE + index * RTP_SPAN (4 legs need 8, RTP
#: and RTCP); below Linux's ephemeral range, where the workers' SIP ports come from.
RTP_BASE = 20000
RTP_SPAN = 20


def worker_label(worker: int) -> str:
    """How a worker's calls in flight name it: this host and its index ("host/index")."""
    return f"{socket.gethostname()}/{worker}"


def free_sip_port(host: str, attempts: int = 20) -> int:
    """A port free for both UDP and TCP, as pjsua2 binds both on one number."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
        return port
    raise OSError(f"no port free for both UDP and TCP on {host}")


def run_worker(
    config: B2buaConfig,
    site: CallSite,
    stop: threading.Event,
    index: int,
    ports: MutableSequence[int],
    legs: MutableSequence[int],
) -> None:
    """One worker of the pool behind the front: its own port, its own calls folder.

    The port goes into `ports[index]` once pjsua2 listens, the number of live
    legs into `legs[index]` as it changes; the front reads both.
    """
    port = free_sip_port(config.host)
    mine = replace(
        config,
        port=port,
        recording_dir=config.recording_dir / f"worker-{index}",
        rtp_port=RTP_BASE + index * RTP_SPAN,
        rtp_port_range=RTP_SPAN,
    )

    def report(n: int) -> None:
        legs[index] = n
        ports[index] = port  # first report: pjsua2 is up and listening

    try:
        run(
            mine,
            site,
            stop,
            on_load=report,
            next_request=request_claimer(site, index),
            worker=index,
        )
    finally:
        ports[index] = 0
        legs[index] = 0


def run_front(
    config: FrontConfig,
    sessions: sessionmaker[Session],
    ports: Sequence[int],
    legs: Sequence[int],
    stop: threading.Event,
) -> None:
    front = Front(
        config, WorkerTable(ports, legs), credential_lookup(sessions), register=registrar(sessions)
    )
    front.serve(stop)
