"""A dialer worker's SIP settings, readable without pjsua2.

`api.wiring` builds a `B2buaConfig` from the settings in every process that
starts workers, and SIP endpoints name themselves with `USER_AGENT`; neither
needs the SIP stack loaded for that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dialer.edge.trust import EdgeTrust
from dialer.sip.digest import Algorithm
from dialer.sip.media_policy import SrtpPolicy

USER_AGENT = "Dialguard"


@dataclass(frozen=True)
class B2buaConfig:
    host: str
    port: int
    trunk: str  # "host:port" of the carrier
    caller_ids: Sequence[str]  # presented to the debtor, used in turn
    recording_dir: Path
    secret: bytes  # signs nonces; share it between processes behind one realm
    region: str = "CN"  # for numbers dialed without a country code
    allow_vanity: bool = False  # letters in a dialed number: refused (484) unless True
    realm: str = "dialguard"
    # SIPp 3.6 and many softphones only speak MD5; list SHA-256 first where clients can.
    algorithms: tuple[Algorithm, ...] = (Algorithm.MD5,)
    nonce_lifetime_s: float = 60.0
    ring_timeout_s: float = 60.0
    watchdog_s: float = 5.0  # a recording not growing this long raises an alert
    clock_rate: int = 8000  # narrowband telephone audio; recordings are written at this rate
    # Behind the Kamailio edge: calls only from the edge, marked by it; no digest here.
    # None: a standalone worker that checks softphones' digests itself.
    edge: EdgeTrust | None = None
    version: str = "0"
    # First RTP port and how many after it this process may use; 0: pjsua2's default
    # (4000 upward). Workers of one host each get a range of their own: two endpoints
    # probing the same ports at once fail calls with "Address already in use".
    rtp_port: int = 0
    rtp_port_range: int = 0
    # The carrier's digest login, answered to its 401/407 on any realm; never logged.
    trunk_username: str | None = None
    trunk_password: str | None = field(default=None, repr=False)
    # SRTP on the agents' leg, per client transport (dialer/sip/media_policy.py); the
    # trunk leg stays plain RTP, as carriers take it.
    srtp: SrtpPolicy = field(default_factory=SrtpPolicy)

    def __post_init__(self) -> None:
        if (self.trunk_username is None) != (self.trunk_password is None):
            raise ValueError("trunk credentials need both a username and a password, or neither")
