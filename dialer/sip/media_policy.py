"""Whether an agent's call may carry plain RTP, decided from its transport and its SDP offer.

Collections calls carry debtors' personal data, and the agencies' plans want
it encrypted in transit. SRTP keys negotiated with SDES (`a=crypto`) travel
inside the SDP, so they are only secret where the SIP hop is (TLS): that is
why the policy is set per transport, and why TLS clients default to
`required` while UDP and TCP clients default to `optional`.

Pure functions, no pjsua2: `api.settings` validates the setting with
`SrtpPolicy.parse`, and the B2BUA calls `decide` on every INVITE before
anything is answered or dialed. pjsua2 itself then negotiates the answer
(its agent-side account runs SRTP "optional"); a refusal here is answered
488 with a Warning saying why, so the agent's softphone log names the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Srtp(StrEnum):
    OFF = "off"  # only as the whole setting: SRTP is never negotiated
    OPTIONAL = "optional"  # SRTP when the softphone offers it, plain RTP otherwise
    REQUIRED = "required"  # plain RTP is refused (488)


TRANSPORTS = ("udp", "tcp", "tls")
#: The SDES crypto suites pjsua2's wheel (2.15.1, libsrtp with its bundled OpenSSL)
#: negotiates, as `Endpoint.srtpCryptoEnum()` lists them: no NULL cipher, no GCM. An
#: offer keyed only with others would be answered plain, so it does not count as SRTP.
SUITES = (
    "AES_256_CM_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
)
DEFAULT_SRTP = "udp=optional,tcp=optional,tls=required"


@dataclass(frozen=True)
class SrtpPolicy:
    """Per client transport: is plain RTP allowed (`optional`) or refused (`required`)."""

    udp: Srtp = Srtp.OPTIONAL
    tcp: Srtp = Srtp.OPTIONAL
    tls: Srtp = Srtp.REQUIRED

    @property
    def enabled(self) -> bool:
        """False only for `off`: the worker then runs no SRTP at all (and spends no CPU on it)."""
        return self.udp is not Srtp.OFF

    def for_transport(self, transport: str) -> Srtp:
        """The rule for a client's transport; an unknown one gets the strictest rule."""
        if transport in TRANSPORTS:
            rule: Srtp = getattr(self, transport)
            return rule
        return Srtp.REQUIRED if Srtp.REQUIRED in self.rules() else self.udp

    def rules(self) -> tuple[Srtp, Srtp, Srtp]:
        return (self.udp, self.tcp, self.tls)

    def __str__(self) -> str:
        if len(set(self.rules())) == 1:
            return str(self.udp)
        return ",".join(f"{t}={r}" for t, r in zip(TRANSPORTS, self.rules(), strict=True))

    @classmethod
    def parse(cls, text: str) -> SrtpPolicy:
        """`off`, `optional`, `required`, or per transport, e.g. `udp=optional,tls=required`.

        A transport left out of the list keeps its default (optional for UDP
        and TCP, required for TLS). `off` applies to every transport or none:
        a worker either runs SRTP or does not.
        """
        value = text.strip().lower()
        if "=" not in value:
            try:
                rule = Srtp(value)
            except ValueError:
                raise ValueError(_usage(text)) from None
            return cls(rule, rule, rule)
        rules = {"udp": cls.udp, "tcp": cls.tcp, "tls": cls.tls}
        for item in value.split(","):
            name, _, word = (part.strip() for part in item.partition("="))
            if name not in rules or word not in (Srtp.OPTIONAL, Srtp.REQUIRED):
                if word == Srtp.OFF:
                    raise ValueError("srtp: `off` applies to every transport; set it alone: off")
                raise ValueError(_usage(text))
            rules[name] = Srtp(word)
        return cls(rules["udp"], rules["tcp"], rules["tls"])


def _usage(text: str) -> str:
    return (
        f"srtp: {text!r} is not a policy; use off, optional, required, "
        f"or per transport, e.g. {DEFAULT_SRTP}"
    )


# --- the offer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """What the first audio stream of an SDP offer asks for."""

    profile: str  # "RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVP", ...
    suites: tuple[str, ...]  # of its a=crypto lines: SRTP keyed in the SDP (SDES, RFC 4568)
    dtls: bool  # a=fingerprint with a DTLS profile (RFC 5763), which we do not answer

    @property
    def sdes(self) -> bool:
        """Keyed with a suite we share: the answer will carry SRTP."""
        return any(suite in SUITES for suite in self.suites)

    @property
    def srtp_only(self) -> bool:
        """The softphone takes SRTP or nothing (a SAVP profile), as `srtp-mand` offers."""
        return "SAVP" in self.profile


_MLINE = re.compile(r"^m=(\w+)\s+\d+(?:/\d+)?\s+(\S+)")


def read_offer(sdp: str) -> Offer | None:
    """The first audio stream of an SDP body; None when there is none (no offer)."""
    profile: str | None = None
    suites: list[str] = []
    dtls = session_fingerprint = False
    for raw in sdp.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        m = _MLINE.match(line)
        if m:
            if profile is not None:  # the audio stream's attributes end here
                break
            if m.group(1) == "audio":
                profile = m.group(2).upper()
            continue
        if line.startswith("a=fingerprint:"):
            if profile is None:
                session_fingerprint = True  # session level: applies to every stream
            else:
                dtls = True
        elif line.startswith("a=crypto:") and profile is not None:
            words = line.split()
            suites.append(words[1].upper() if len(words) > 1 else "")
    if profile is None:
        return None
    dtls = (dtls or session_fingerprint) and "TLS" in profile
    return Offer(profile, tuple(suites), dtls)


def sdp_body(message: str) -> str:
    """The body of a raw SIP message, or "" when it has none."""
    text = message.replace("\r\n", "\n")
    _, sep, body = text.partition("\n\n")
    return body if sep else ""


def client_transport(vias: Iterable[str], edge_says: str | None) -> str:
    """The transport the softphone used to reach us: udp, tcp, tls, or what it claims.

    Behind the edge (Kamailio) every call arrives over the edge's own hop, so
    the edge names the softphone's transport in `X-Dialguard-Transport`; the
    edge replaces any such header a client sent. Without an edge, the top Via
    (the softphone's own) names it. An unreadable value is passed on as is:
    `SrtpPolicy.for_transport` gives it the strictest rule.
    """
    if edge_says is not None:
        return edge_says.strip().lower()
    for via in vias:
        sent = via.split(",", 1)[0].strip().split(None, 1)[0] if via.strip() else ""
        return sent.rsplit("/", 1)[-1].lower()  # "SIP/2.0/TLS" -> "tls"
    return "udp"


# --- the decision ----------------------------------------------------------------------------


class Verdict(StrEnum):
    SRTP = "srtp"  # accept; the answer carries SRTP
    PLAIN = "plain"  # accept; plain RTP
    REFUSE = "refuse"  # 488 Not Acceptable Here, with `why` in a Warning


@dataclass(frozen=True)
class MediaDecision:
    verdict: Verdict
    transport: str
    why: str  # for the Warning header and the log; no secret, no number


def decide(policy: SrtpPolicy, transport: str, sdp: str) -> MediaDecision:
    """Accept with SRTP, accept plain, or refuse, for an INVITE over `transport` with body `sdp`."""
    rule = policy.for_transport(transport)
    offer = read_offer(sdp)
    if offer is None:  # no SDP in the INVITE: we would offer, and cannot force the answer
        if rule is Srtp.REQUIRED:
            return MediaDecision(
                Verdict.REFUSE,
                transport,
                f"SRTP is required over {transport}: put an SRTP offer (a=crypto) in the INVITE",
            )
        return MediaDecision(Verdict.PLAIN, transport, "no SDP offer in the INVITE")
    if offer.sdes and rule is not Srtp.OFF:
        return MediaDecision(Verdict.SRTP, transport, f"SRTP (SDES) over {transport}")
    if offer.srtp_only:
        if rule is Srtp.OFF:
            why = "SRTP is off on this server: offer plain RTP (RTP/AVP)"
        elif offer.dtls:
            why = "DTLS-SRTP is not supported: offer SRTP keyed with SDES (a=crypto)"
        elif offer.suites:
            why = f"no crypto suite in common: offer {SUITES[2]}"
        else:
            why = f"{offer.profile} offered without a=crypto keys: offer SDES-keyed SRTP"
        return MediaDecision(Verdict.REFUSE, transport, why)
    if rule is Srtp.REQUIRED:
        fix = f"offer {SUITES[2]}" if offer.suites else "enable SRTP (SDES) in the softphone"
        return MediaDecision(
            Verdict.REFUSE, transport, f"plain RTP is refused over {transport}: {fix}"
        )
    return MediaDecision(Verdict.PLAIN, transport, f"plain RTP allowed over {transport}")
