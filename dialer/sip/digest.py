"""Server-side SIP digest authentication (RFC 2617, RFC 3261 §22, RFC 8760) and a failure throttle.

Pure: no clock, socket or file is read here. The caller passes `now` and the
secret, so the dialer, tests and an audit replay get the same verdicts.

Why these choices:

- Credentials are kept as HA1 per algorithm (``H(user:realm:password)``),
  never the password: a leaked table cannot be replayed against another realm
  or service, and the SIP server never needs the cleartext.
- Nonces carry their own issue time, signed with HMAC-SHA-256, so a nonce
  expires without the server remembering which ones it issued; any process
  holding the secret can check a nonce issued by another.
- Stateless nonces cannot stop a replay of the same response within the nonce
  lifetime (that needs a per-nonce ``nc`` table). An INVITE replayed within a
  minute places the same call the agent already placed, under the same policy
  check, so the short lifetime is the bound we accept.
- ``-sess`` algorithms are refused: no softphone we support needs them and
  they double the code paths an attacker can probe.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

log = logging.getLogger(__name__)


class Algorithm(StrEnum):
    """Digest algorithms as spelled on the wire (RFC 8760 §2)."""

    MD5 = "MD5"
    SHA256 = "SHA-256"


_HASH_NAMES: Mapping[Algorithm, str] = {Algorithm.MD5: "md5", Algorithm.SHA256: "sha256"}


def _h(algorithm: Algorithm, text: str) -> str:
    # MD5 is what the protocol and most softphones speak; SHA-256 is offered first.
    return hashlib.new(_HASH_NAMES[algorithm], text.encode("utf-8")).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: Algorithm) -> str:
    """H(username:realm:password): what is stored instead of the password."""
    return _h(algorithm, f"{username}:{realm}:{password}")


@dataclass(frozen=True)
class Credential:
    """A user's stored secret: one HA1 per algorithm they may authenticate with."""

    username: str
    realm: str
    ha1: Mapping[Algorithm, str]

    @classmethod
    def from_password(
        cls,
        username: str,
        realm: str,
        password: str,
        algorithms: tuple[Algorithm, ...] = (Algorithm.SHA256, Algorithm.MD5),
    ) -> Credential:
        """Hash once at enrolment; the password is not kept on the object."""
        return cls(username, realm, {a: ha1(username, realm, password, a) for a in algorithms})


# --- nonces ------------------------------------------------------------------------------


class NonceState(StrEnum):
    VALID = "valid"
    STALE = "stale"  # ours, but too old: re-challenge with stale=true, no failure counted
    INVALID = "invalid"  # not ours (forged, altered, from another secret)


_SIG_HEX = 32  # 128 bits of HMAC-SHA-256: forging needs the secret, not luck


def _sign(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode("ascii"), hashlib.sha256).hexdigest()[:_SIG_HEX]


def make_nonce(secret: bytes, now: float, salt: str | None = None) -> str:
    """``<issued, hex seconds>.<random>.<hmac>``: self-describing, so no server state."""
    body = f"{int(now):x}.{salt if salt is not None else secrets.token_hex(8)}"
    return f"{body}.{_sign(secret, body)}"


def check_nonce(secret: bytes, nonce: str, now: float, lifetime_s: float) -> NonceState:
    body, _, sig = nonce.rpartition(".")
    issued_hex = body.partition(".")[0]
    if not body or not hmac.compare_digest(sig, _sign(secret, body)):
        return NonceState.INVALID
    try:
        issued = int(issued_hex, 16)
    except ValueError:
        return NonceState.INVALID
    if issued > now + 5:  # signed by us but from the future: a clock jump, treat as forged
        return NonceState.INVALID
    return NonceState.VALID if now - issued <= lifetime_s else NonceState.STALE


# --- challenge ---------------------------------------------------------------------------


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(
    realm: str, nonce: str, algorithm: Algorithm = Algorithm.MD5, *, stale: bool = False
) -> str:
    """A WWW-Authenticate value offering qop=auth with `algorithm`.

    RFC 8760 §2.4: offer one challenge per algorithm, most preferred first;
    call this once per algorithm and send each as its own header.
    """
    parts = [
        f"realm={_quote(realm)}",
        f"nonce={_quote(nonce)}",
        f"algorithm={algorithm.value}",
        'qop="auth"',
    ]
    if stale:
        parts.append("stale=true")
    return "Digest " + ", ".join(parts)


# --- Authorization -----------------------------------------------------------------------


class DigestParseError(ValueError):
    """An Authorization header we cannot read as a digest response."""


@dataclass(frozen=True)
class DigestResponse:
    """The fields of a client's Authorization header that verification needs."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"  # RFC 2617: absent means MD5
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)


def _quoted(text: str, i: int, name: str) -> tuple[str, int]:
    """The quoted-string starting after the opening quote at text[i - 1]; index after it."""
    chars: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            chars.append(text[i + 1])
            i += 2
        elif c == '"':
            return "".join(chars), i + 1
        else:
            chars.append(c)
            i += 1
    raise DigestParseError(f"unterminated quoted value for {name!r}")


def _params(text: str) -> dict[str, str]:
    """auth-param list: name=token or name="quoted, \\"escaped\\"" separated by commas."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise DigestParseError(f"parameter without a value: {text[i : i + 30]!r}")
        name = text[i:eq].strip().lower()
        if not name or any(c in name for c in ' \t,"'):
            raise DigestParseError(f"bad parameter name {name!r}")
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            value, i = _quoted(text, i + 1, name)
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            value = text[i:end].strip()
            i = end
        if name in out:
            raise DigestParseError(f"parameter {name!r} given twice")
        out[name] = value
    return out


_REQUIRED = ("username", "realm", "nonce", "uri", "response")


def parse_authorization(value: str) -> DigestResponse:
    """Read an Authorization (or Proxy-Authorization) header value."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestParseError(f"not a digest response (scheme {scheme[:20]!r})")
    p = _params(rest)
    missing = [k for k in _REQUIRED if k not in p]
    if missing:
        raise DigestParseError(f"digest response lacks {', '.join(missing)}")
    return DigestResponse(
        username=p["username"],
        realm=p["realm"],
        nonce=p["nonce"],
        uri=p["uri"],
        response=p["response"].lower(),
        algorithm=p.get("algorithm", "MD5"),
        qop=p.get("qop"),
        nc=p.get("nc"),
        cnonce=p.get("cnonce"),
        params=p,
    )


def expected_response(
    ha1_hex: str,
    method: str,
    uri: str,
    nonce: str,
    algorithm: Algorithm,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The response a client knowing HA1 must send (RFC 2617 §3.2.2.1, qop=auth or none)."""
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop is None:
        return _h(algorithm, f"{ha1_hex}:{nonce}:{ha2}")
    return _h(algorithm, f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


class Outcome(StrEnum):
    OK = "ok"
    STALE = "stale"  # answer 401 again with stale=true: the client did nothing wrong
    MALFORMED = "malformed"  # answer 401: let the client try properly (not a guess)
    DENIED = "denied"  # answer 403 and count a failure


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    why: str
    username: str | None = None


def verify(
    auth: DigestResponse,
    *,
    method: str,
    request_uri: str | None,
    realm: str,
    credential: Credential | None,
    secret: bytes,
    now: float,
    nonce_lifetime_s: float = 60.0,
    algorithms: tuple[Algorithm, ...] = (Algorithm.SHA256, Algorithm.MD5),
) -> Verdict:
    """Whether `auth` proves knowledge of `credential` for this request.

    `credential` is None for an unknown user: that is DENIED with the same
    work done as for a wrong password, so response time does not reveal which
    usernames exist. `request_uri`, when given, must equal the digest uri,
    so a response captured for one number cannot dial another.
    """
    try:
        algorithm = Algorithm(auth.algorithm.upper().replace("SHA256", "SHA-256"))
    except ValueError:
        return Verdict(Outcome.MALFORMED, f"unsupported algorithm {auth.algorithm[:20]!r}")
    if algorithm not in algorithms:
        return Verdict(Outcome.MALFORMED, f"algorithm {algorithm.value} not offered")
    if auth.realm != realm:
        return Verdict(Outcome.MALFORMED, "response for another realm")
    if auth.qop is not None and auth.qop != "auth":
        return Verdict(Outcome.MALFORMED, f"unsupported qop {auth.qop[:20]!r}")
    if auth.qop is not None and (not auth.nc or not auth.cnonce):
        return Verdict(Outcome.MALFORMED, "qop=auth without nc and cnonce")
    if auth.qop is None:  # we always offer qop=auth; a client that drops it downgrades us
        return Verdict(Outcome.MALFORMED, "response without qop")
    state = check_nonce(secret, auth.nonce, now, nonce_lifetime_s)
    if state is NonceState.INVALID:
        return Verdict(Outcome.MALFORMED, "nonce not issued by us")
    if request_uri is not None and auth.uri != request_uri:
        return Verdict(Outcome.DENIED, "digest uri differs from the request URI", auth.username)

    stored = None
    if credential is not None and credential.username == auth.username:
        stored = credential.ha1.get(algorithm)
    # Unknown user or no HA1 for this algorithm: compare against a throwaway hash anyway.
    key = stored if stored is not None else _h(algorithm, secrets.token_hex(16))
    want = expected_response(
        key, method, auth.uri, auth.nonce, algorithm, auth.qop, auth.nc, auth.cnonce
    )
    if not hmac.compare_digest(want, auth.response) or stored is None:
        return Verdict(Outcome.DENIED, "wrong credentials", auth.username)
    if state is NonceState.STALE:
        return Verdict(Outcome.STALE, "nonce expired", auth.username)
    return Verdict(Outcome.OK, "ok", auth.username)


# --- throttle ----------------------------------------------------------------------------


@dataclass
class _Source:
    failures: list[float] = field(default_factory=list)
    blocked_until: float = 0.0


class FailureThrottle:
    """Refuses a source address for `cooloff_s` after `max_failures` within `window_s`.

    Keyed by source address rather than username so that guessing across many
    usernames from one host is caught too; the clock is injected so tests and
    callers decide what time is.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        max_failures: int = 5,
        window_s: float = 60.0,
        cooloff_s: float = 300.0,
        max_sources: int = 10_000,
    ) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        self._clock = clock
        self.max_failures = max_failures
        self.window_s = window_s
        self.cooloff_s = cooloff_s
        self._max_sources = max_sources
        self._sources: dict[str, _Source] = {}

    def blocked(self, source: str) -> bool:
        entry = self._sources.get(source)
        return entry is not None and self._clock() < entry.blocked_until

    def failure(self, source: str) -> bool:
        """Count one failure; True when this source is now blocked."""
        now = self._clock()
        entry = self._sources.get(source)
        if entry is None:
            if len(self._sources) >= self._max_sources:
                self._prune(now)
            entry = self._sources[source] = _Source()
        entry.failures = [t for t in entry.failures if now - t < self.window_s]
        entry.failures.append(now)
        if len(entry.failures) >= self.max_failures:
            entry.blocked_until = now + self.cooloff_s
            entry.failures.clear()
        return now < entry.blocked_until

    def success(self, source: str) -> None:
        """A good login clears the count, but never lifts an active block."""
        entry = self._sources.get(source)
        if entry is not None and self._clock() >= entry.blocked_until:
            del self._sources[source]

    def _prune(self, now: float) -> None:
        # Memory stays bounded even under a spray from many addresses: drop what
        # can no longer block, then the oldest if that was not enough.
        for key in [
            k
            for k, e in self._sources.items()
            if now >= e.blocked_until and all(now - t >= self.window_s for t in e.failures)
        ]:
            del self._sources[key]
        while len(self._sources) >= self._max_sources:
            del self._sources[next(iter(self._sources))]


# --- one login check for every place an agent authenticates --------------------------------


@dataclass(frozen=True)
class Login:
    """How to answer a request: let the agent in, challenge (401) or refuse (403)."""

    agent: str | None = None
    challenge: tuple[tuple[str, str], ...] = ()  # WWW-Authenticate headers of a 401
    refusal: str | None = None  # reason phrase of a 403


#: Longer than any username an account can have (and than a database column holds).
_MAX_USERNAME = 128


def plausible_username(username: str) -> bool:
    """Whether a digest username can name an account at all: UTF-8, no control characters.

    Anything else is answered as an unknown user without asking the database, whose
    driver would raise on text it cannot encode (and leave the call unanswered).
    """
    if not username or len(username) > _MAX_USERNAME:
        return False
    try:
        username.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return all(ch.isprintable() for ch in username)


def check_login(
    authorization: Sequence[str],
    *,
    method: str,
    uri: str,
    source: str,
    realm: str,
    secret: bytes,
    algorithms: tuple[Algorithm, ...],
    nonce_lifetime_s: float,
    credentials: Callable[[str], Credential | None],
    throttle: FailureThrottle,
    now: float,
) -> Login:
    """The digest check the SIP front and a dialer worker both make, throttle included.

    Only a wrong password counts as a failure; an unreadable, stale or missing
    answer gets a fresh challenge, as softphones expect.
    """

    def fresh(stale: bool = False) -> Login:
        nonce = make_nonce(secret, now)
        headers = tuple(
            ("WWW-Authenticate", challenge(realm, nonce, alg, stale=stale)) for alg in algorithms
        )
        return Login(challenge=headers)

    if throttle.blocked(source):
        log.warning("digest: %s throttled after failed logins", source)
        return Login(refusal="Too Many Failed Logins")
    if not authorization:
        return fresh()
    try:
        parsed = [parse_authorization(v) for v in authorization]
    except DigestParseError as exc:
        log.info("digest: unreadable Authorization from %s: %s", source, exc)
        return fresh()
    auth = next((a for a in parsed if a.realm == realm), parsed[0])
    verdict = verify(
        auth,
        method=method,
        request_uri=uri,
        realm=realm,
        credential=credentials(auth.username) if plausible_username(auth.username) else None,
        secret=secret,
        now=now,
        nonce_lifetime_s=nonce_lifetime_s,
        algorithms=algorithms,
    )
    if verdict.outcome is Outcome.OK:
        throttle.success(source)
        return Login(agent=auth.username)
    if verdict.outcome is Outcome.DENIED:
        throttle.failure(source)
        log.warning("digest: login refused from %s: %s", source, verdict.why)
        return Login(refusal="Forbidden")
    if verdict.outcome is Outcome.MALFORMED:
        log.info("digest: answer from %s not usable: %s", source, verdict.why)
    return fresh(stale=verdict.outcome is Outcome.STALE)
