"""SIP digest authentication and the failure throttle: table-driven, no I/O."""

from __future__ import annotations

import pytest

from dialer.sip.digest import (
    Algorithm,
    Credential,
    DigestParseError,
    DigestResponse,
    FailureThrottle,
    NonceState,
    Outcome,
    challenge,
    check_nonce,
    expected_response,
    ha1,
    make_nonce,
    parse_authorization,
    verify,
)

SECRET = b"s" * 32
REALM = "dialguard"
NOW = 1_800_000_000.0
URI = "sip:13800138000@127.0.0.1:5060"


# --- published test vectors ---------------------------------------------------------------

# RFC 2617 §3.5 (MD5) and RFC 7616 §3.9.1 (MD5 and SHA-256, "Circle of Life").
VECTORS = [
    pytest.param(
        Algorithm.MD5,
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "0a4f113b",
        "6629fae49393a05397450978507c4ef1",
        id="rfc2617-md5",
    ),
    pytest.param(
        Algorithm.MD5,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        "8ca523f5e9506fed4657c9700eebdbec",
        id="rfc7616-md5",
    ),
    pytest.param(
        Algorithm.SHA256,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        id="rfc7616-sha256",
    ),
]


@pytest.mark.parametrize(("alg", "user", "realm", "password", "nonce", "cnonce", "want"), VECTORS)
def test_published_vectors(
    alg: Algorithm, user: str, realm: str, password: str, nonce: str, cnonce: str, want: str
) -> None:
    key = ha1(user, realm, password, alg)
    got = expected_response(key, "GET", "/dir/index.html", nonce, alg, "auth", "00000001", cnonce)
    assert got == want


def test_credential_keeps_no_password() -> None:
    cred = Credential.from_password("agent1", REALM, "hunter2")
    assert "hunter2" not in repr(cred)
    assert cred.ha1[Algorithm.MD5] == ha1("agent1", REALM, "hunter2", Algorithm.MD5)
    assert len(cred.ha1[Algorithm.SHA256]) == 64


# --- nonces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "state"),
    [
        (0, NonceState.VALID),
        (59, NonceState.VALID),
        (60, NonceState.VALID),
        (61, NonceState.STALE),
        (-3, NonceState.VALID),  # small clock skew between processes
        (-600, NonceState.INVALID),  # issued "in the future"
    ],
)
def test_nonce_expires_without_state(age: float, state: NonceState) -> None:
    nonce = make_nonce(SECRET, NOW)
    assert check_nonce(SECRET, nonce, NOW + age, lifetime_s=60) is state


@pytest.mark.parametrize(
    "tamper",
    [
        lambda n: n[:-1] + ("0" if n[-1] != "0" else "1"),  # signature
        lambda n: f"{int(n.split('.')[0], 16) + 100:x}." + n.split(".", 1)[1],  # issue time
        lambda n: "",
        lambda n: "garbage",
        lambda n: "..",
        lambda n: make_nonce(b"other secret", NOW),
    ],
    ids=["sig", "time", "empty", "garbage", "dots", "foreign"],
)
def test_tampered_nonce_is_invalid(tamper: object) -> None:
    assert callable(tamper)
    nonce = tamper(make_nonce(SECRET, NOW))
    assert check_nonce(SECRET, nonce, NOW, 60) is NonceState.INVALID


def test_nonces_are_unique() -> None:
    assert len({make_nonce(SECRET, NOW) for _ in range(100)}) == 100


# --- challenge and parsing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "stale", "want"),
    [
        (Algorithm.MD5, False, 'Digest realm="r", nonce="n", algorithm=MD5, qop="auth"'),
        (
            Algorithm.SHA256,
            True,
            'Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth", stale=true',
        ),
    ],
)
def test_challenge(alg: Algorithm, stale: bool, want: str) -> None:
    assert challenge("r", "n", alg, stale=stale) == want


def test_challenge_round_trips_through_the_parser() -> None:
    value = challenge('we"ird\\realm', "n").replace(
        "Digest ", 'Digest username="u", uri="x", response="ab", '
    )
    assert parse_authorization(value).realm == 'we"ird\\realm'


@pytest.mark.parametrize(
    ("header", "want"),
    [
        (
            'Digest username="agent1", realm="dialguard", nonce="abc", uri="sip:1@h",'
            ' response="DEADBEEF", algorithm=MD5, qop=auth, nc=00000001, cnonce="xyz"',
            DigestResponse(
                "agent1",
                "dialguard",
                "abc",
                "sip:1@h",
                "deadbeef",
                "MD5",
                "auth",
                "00000001",
                "xyz",
            ),
        ),
        (  # SIPp's spelling: no spaces, algorithm absent means MD5
            'Digest username="a",realm="r",uri="sip:1@h",nonce="n",response="00"',
            DigestResponse("a", "r", "n", "sip:1@h", "00"),
        ),
        (  # commas and escaped quotes inside quoted values; scheme is case-insensitive
            'digest username="a\\"b, c", realm="r", nonce="n", uri="sip:1@h", response="1",'
            ' opaque="x,y"',
            DigestResponse('a"b, c', "r", "n", "sip:1@h", "1"),
        ),
    ],
    ids=["full", "sipp", "quoted"],
)
def test_parse_authorization(header: str, want: DigestResponse) -> None:
    got = parse_authorization(header)
    assert (got.username, got.realm, got.nonce, got.uri, got.response, got.algorithm) == (
        want.username,
        want.realm,
        want.nonce,
        want.uri,
        want.response,
        want.algorithm,
    )
    assert (got.qop, got.nc, got.cnonce) == (want.qop, want.nc, want.cnonce)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic dXNlcjpwYXNz",
        'Digest realm="r", nonce="n", uri="u", response="x"',  # no username
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", realm="s"',
        'Digest username="a, realm="r"',  # unterminated
        "Digest username",
        'Digest user name="a"',
    ],
)
def test_parse_refuses(header: str) -> None:
    with pytest.raises(DigestParseError):
        parse_authorization(header)


# --- verification ------------------------------------------------------------------------

CRED = Credential.from_password("agent1", REALM, "secret")


def _auth(
    *,
    password: str = "secret",
    user: str = "agent1",
    alg: Algorithm = Algorithm.MD5,
    uri: str = URI,
    realm: str = REALM,
    nonce: str | None = None,
    qop: str | None = "auth",
    issued: float = NOW,
    method: str = "INVITE",
) -> DigestResponse:
    nonce = nonce if nonce is not None else make_nonce(SECRET, issued)
    key = ha1(user, realm, password, alg)
    nc, cnonce = ("00000001", "c0ffee") if qop else (None, None)
    response = expected_response(key, method, uri, nonce, alg, qop, nc, cnonce)
    return DigestResponse(user, realm, nonce, uri, response, alg.value, qop, nc, cnonce)


@pytest.mark.parametrize(
    ("auth", "cred", "outcome"),
    [
        (_auth(), CRED, Outcome.OK),
        (_auth(alg=Algorithm.SHA256), CRED, Outcome.OK),
        (_auth(password="wrong"), CRED, Outcome.DENIED),
        (_auth(user="mallory"), None, Outcome.DENIED),  # unknown user: same verdict
        (_auth(uri="sip:110@127.0.0.1:5060"), CRED, Outcome.DENIED),  # replayed for another number
        (_auth(method="BYE"), CRED, Outcome.DENIED),
        (_auth(issued=NOW - 3600), CRED, Outcome.STALE),
        (_auth(issued=NOW - 3600, password="wrong"), CRED, Outcome.DENIED),  # stale is no excuse
        (_auth(nonce="forged"), CRED, Outcome.MALFORMED),
        (
            _auth(realm="elsewhere"),
            Credential.from_password("agent1", "elsewhere", "secret"),
            Outcome.MALFORMED,
        ),
        (_auth(qop=None), CRED, Outcome.MALFORMED),  # downgrade to RFC 2069
        (
            DigestResponse(
                "agent1", REALM, make_nonce(SECRET, NOW), URI, "00", "MD5-sess", "auth", "1", "c"
            ),
            CRED,
            Outcome.MALFORMED,
        ),
        (
            _auth(alg=Algorithm.SHA256),
            Credential.from_password("agent1", REALM, "secret", (Algorithm.MD5,)),
            Outcome.DENIED,  # no SHA-256 HA1 enrolled
        ),
    ],
    ids=[
        "md5-ok",
        "sha256-ok",
        "wrong-password",
        "unknown-user",
        "other-uri",
        "other-method",
        "stale",
        "stale-and-wrong",
        "forged-nonce",
        "other-realm",
        "no-qop",
        "sess",
        "alg-not-enrolled",
    ],
)
def test_verify(auth: DigestResponse, cred: Credential | None, outcome: Outcome) -> None:
    verdict = verify(
        auth,
        method="INVITE",
        request_uri=URI,
        realm=REALM,
        credential=cred,
        secret=SECRET,
        now=NOW,
    )
    assert verdict.outcome is outcome, verdict.why


def test_verify_only_offered_algorithms() -> None:
    verdict = verify(
        _auth(alg=Algorithm.MD5),
        method="INVITE",
        request_uri=URI,
        realm=REALM,
        credential=CRED,
        secret=SECRET,
        now=NOW,
        algorithms=(Algorithm.SHA256,),
    )
    assert verdict.outcome is Outcome.MALFORMED


# --- throttle ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("steps", "blocked"),
    [
        # (seconds to advance, "f"ail | "s"uccess) ... then whether the source is blocked
        ([(0, "f")] * 2, False),
        ([(0, "f")] * 3, True),
        ([(0, "f"), (0, "f"), (61, "f")], False),  # first two left the window
        ([(0, "f")] * 3 + [(299, "")], True),
        ([(0, "f")] * 3 + [(300, "")], False),  # cool-off over
        ([(0, "f"), (0, "f"), (0, "s"), (0, "f")], False),  # success clears the count
        ([(0, "f")] * 3 + [(10, "s")], True),  # ... but not an active block
    ],
)
def test_throttle(steps: list[tuple[float, str]], blocked: bool) -> None:
    clock = Clock()
    throttle = FailureThrottle(clock, max_failures=3, window_s=60, cooloff_s=300)
    for advance, what in steps:
        clock.t += advance
        if what == "f":
            throttle.failure("10.0.0.1")
        elif what == "s":
            throttle.success("10.0.0.1")
    assert throttle.blocked("10.0.0.1") is blocked
    assert not throttle.blocked("10.0.0.2")


def test_throttle_memory_is_bounded() -> None:
    clock = Clock()
    throttle = FailureThrottle(clock, max_failures=3, max_sources=100)
    for i in range(10_000):
        throttle.failure(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._sources) <= 100
