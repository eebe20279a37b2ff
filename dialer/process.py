"""The dialer processes: a worker's B2BUA wired to the database, the call policy and the
recording spool, on the port the SIP edge's dispatcher list names for it.

Outside dialer/sip, this is the one dialer module that loads pjsua2 (through
dialer.sip.b2bua); only the SIP processes `dialguard up` starts import it.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, MutableSequence
from dataclasses import replace

from dialer.booking import finish_call, store_leftover
from dialer.calls import CallRecord
from dialer.click_to_call import request_claimer
from dialer.decision import caller_id_check, policy_decider
from dialer.edge.dispatch import RTP_BASE, RTP_SPAN, worker_port
from dialer.errors import SipPortBusy
from dialer.live_calls import call_ended, command_reader, event_writer, forget_live_calls
from dialer.numbers import mask, number_key
from dialer.reservations import settle_abandoned
from dialer.sip.b2bua import B2bua
from dialer.sip.config import B2buaConfig
from dialer.sip.salvage import salvage
from dialer.site import CallSite
from dialer.softphones import credential_lookup

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


__all__ = ["RTP_BASE", "RTP_SPAN", "run", "run_worker", "worker_label"]


def worker_label(worker: int) -> str:
    """How a worker's calls in flight name it: this host and its index ("host/index")."""
    return f"{socket.gethostname()}/{worker}"


def run_worker(
    config: B2buaConfig,
    site: CallSite,
    stop: threading.Event,
    index: int,
    ports: MutableSequence[int],
    legs: MutableSequence[int],
    *,
    port_base: int,
) -> None:
    """Worker `index` of this host: SIP on port_base + index, its own RTP range and calls folder.

    The port is fixed, not picked free, so the edge's dispatcher list
    (`dialer.edge.dispatch`) names it and a restarted worker comes back where
    the edge looks for it. It goes into `ports[index]` once pjsua2 listens,
    the number of live legs into `legs[index]` as it changes.
    """
    if config.edge is None:  # a pool worker taking logins itself is the hole the edge closes
        raise ValueError("a pool worker needs the edge's trust (B2buaConfig.edge)")
    port = worker_port(port_base, index)
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
    except SipPortBusy as exc:
        raise SipPortBusy(
            str(exc), hint="stop whatever holds the port or set DIALGUARD_DIALER_PORT_BASE"
        ) from None
    finally:
        ports[index] = 0
        legs[index] = 0
