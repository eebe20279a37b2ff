"""One-time codes: RFC 6238's own test vectors, drift, replay, malformed input."""

from __future__ import annotations

import base64

import pytest

from api.accounts.totp import code_at, new_secret, provisioning_uri, verify

RFC = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B, SHA-1


@pytest.mark.parametrize(
    ("unix", "code"),
    [
        (59, "287082"),
        (1111111109, "081804"),
        (1111111111, "050471"),
        (1234567890, "005924"),
        (2000000000, "279037"),
        (20000000000, "353130"),
    ],
)
def test_rfc6238_vectors(unix: int, code: str) -> None:
    assert code_at(RFC, unix) == code


def test_verify_allows_one_step_of_drift_and_no_replay() -> None:
    secret = new_secret()
    now = 1_800_000_000.0
    step = verify(secret, code_at(secret, now - 30), now)
    assert step == int(now // 30) - 1  # the previous 30 s window is still good
    assert verify(secret, code_at(secret, now - 60), now) is None  # two windows old
    current = verify(secret, code_at(secret, now), now)
    assert current is not None
    assert verify(secret, code_at(secret, now), now, last_used_step=current) is None


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes(bad: str) -> None:
    assert verify(new_secret(), bad, 1_800_000_000.0) is None


def test_provisioning_uri() -> None:
    uri = provisioning_uri("JBSWY3DPEHPK3PXP", "sup.wang")
    assert uri == (
        "otpauth://totp/Dialguard%3Asup.wang?secret=JBSWY3DPEHPK3PXP&issuer=Dialguard"
        "&digits=6&period=30"
    )
