"""Softphones that cannot read two digest challenges get the one they would answer."""

from __future__ import annotations

import pytest

from dialer.sip.digest import Algorithm
from dialer.sip.front import challenged_algorithms

BOTH = (Algorithm.MD5, Algorithm.SHA256)


@pytest.mark.parametrize(
    ("offered", "user_agent", "challenged"),
    [
        (BOTH, "baresip v1.0.0 (x86_64/linux)", (Algorithm.MD5,)),  # Debian 12's: MD5 only
        (BOTH, "baresip v0.6.1 (x86_64/linux)", (Algorithm.MD5,)),
        (BOTH, "baresip v2.9.0 (x86_64/linux)", BOTH),  # newer ones read both
        (BOTH, "Linphone Desktop/5.2.0", BOTH),
        (BOTH, "MicroSIP/3.21.3", BOTH),
        (BOTH, None, BOTH),
        ((Algorithm.SHA256,), "baresip v1.0.0 (x86_64/linux)", (Algorithm.SHA256,)),  # no MD5
        ((Algorithm.SHA256, Algorithm.MD5), "baresip v1.0.0", (Algorithm.MD5,)),
    ],
)
def test_challenged_algorithms(
    offered: tuple[Algorithm, ...], user_agent: str | None, challenged: tuple[Algorithm, ...]
) -> None:
    assert challenged_algorithms(offered, user_agent) == challenged
