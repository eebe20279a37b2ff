"""The softphone the README names first, Debian's baresip 1.0, registers and calls through
the edge on the default settings, over UDP and TLS."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from recording.db.engine import make_engine
from tests.dialer.edge.conftest import AGENTS, StartEdge, wait_for

BASE_MODULES = ("g711.so", "aubridge.so")


def _baresip(
    home: Path,
    account: str,
    command: str,
    seconds: int = 6,
    modules: tuple[str, ...] = BASE_MODULES,
) -> subprocess.Popen[str]:
    """baresip in `home`, running `command` for `seconds` with one `account` and no sound card.

    `modules` are the codec and media modules loaded: G.711 and the silent audio bridge are
    enough to call; a test that calls with SRTP adds srtp.so. The end-to-end tests start
    their softphone here too, so both prove the one configuration the docs describe.
    """
    home.mkdir()
    (home / "config").write_text(
        "sip_listen 127.0.0.1:0\n"
        "sip_verify_server no\n"  # the embedded self-signed certificate
        "audio_player aubridge,none\naudio_source aubridge,none\naudio_alert aubridge,none\n"
        "module_path /usr/lib/baresip/modules\n"
        + "".join(f"module {module}\n" for module in modules)
        + "module_app account.so\nmodule_app menu.so\n"
    )
    (home / "accounts").write_text(account + "\n")
    return subprocess.Popen(
        ["baresip", "-f", str(home), "-e", command, "-t", str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("transport", ["udp", "tls"])
def test_baresip_registers_and_calls_through_the_edge(
    start_edge: StartEdge, tmp_path: Path, transport: str
) -> None:
    edge = start_edge(workers=1)
    port = edge.config.tls_port if transport == "tls" else edge.port
    account = (
        f"<sip:alice@127.0.0.1:{port};transport={transport}>;auth_pass={AGENTS['alice']};regint=60"
    )
    phone = _baresip(tmp_path / "baresip", account, "d 13800138000")
    try:
        engine = make_engine(edge.database_url)

        def registered() -> bool:
            with engine.connect() as connection:
                return bool(
                    connection.execute(
                        text("SELECT count(*) FROM location WHERE username = 'alice'")
                    ).scalar()
                )

        assert wait_for(registered, 8), edge.log()[-2000:]
        engine.dispose()
        assert wait_for(lambda: bool(edge.workers[0].invites()), 8), edge.log()[-2000:]
    finally:
        phone.kill()
        out, _ = phone.communicate()
    invite = edge.workers[0].invites()[-1]
    assert "X-Dialguard-Agent: alice" in invite, out[-2000:]
    assert f"X-Dialguard-Transport: {transport}" in invite
