"""Where a host's dialer workers listen, and the Kamailio dispatcher list naming them.

Worker ports are fixed (base + index) rather than picked at random so the
edge's dispatcher list stays right across restarts of a worker or of the
whole host: a restarted worker comes back where the edge looks for it.
Pure: nothing here opens a socket.
"""

from __future__ import annotations

from collections.abc import Iterable

#: `DIALGUARD_DIALER_PORT_BASE`'s default: above the edge's 5060/5061, below any RTP.
DEFAULT_PORT_BASE = 5100
#: The most workers one host runs (the `dialer_workers` setting's upper bound).
MAX_WORKERS = 256
#: Each worker's RTP ports: RTP_SPAN from RTP_BASE + index * RTP_SPAN (4 legs need 8, RTP
#: and RTCP); below Linux's ephemeral range. The SIP ports stay below RTP_BASE.
RTP_BASE = 20000
RTP_SPAN = 20
#: Calls one worker carries (pjsua2's 4 legs, two a bridged call): the dispatcher's maxload.
CALLS_PER_WORKER = 2


def worker_port(base: int, index: int) -> int:
    """The SIP port (UDP and TCP) of worker `index` of a host."""
    if index < 0 or index >= MAX_WORKERS:
        raise ValueError(f"worker index {index} is outside 0..{MAX_WORKERS - 1}")
    return base + index


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def dispatcher_list(host: str, ports: Iterable[int], set_id: int = 1) -> str:
    """Kamailio's dispatcher.list: one line per worker, `duid` for the call-load algorithm."""
    return "".join(
        f"{set_id} sip:{_host(host)}:{port};transport=udp 0 0 "
        f"duid={host}-{port};maxload={CALLS_PER_WORKER}\n"
        for port in ports
    )
