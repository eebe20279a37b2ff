"""A softphone on the default settings, over UDP, TCP and TLS (with SRTP, which the default
policy requires there), through `dialguard up`: the Kamailio edge, a pjsua2 worker, the
carrier, the recording.

baresip (Debian's) is the softphone the docs name first; the edge tests prove it reaches a
worker, this one that the whole call is made, recorded and stored.
"""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from dialer.models import CallAttempt
from recording.db.engine import make_engine, session_factory
from recording.models import Recording, RecordingStatus
from tests.dialer.sip.test_b2bua import Carrier
from tests.e2e.test_up import GREEN_WITHIN, Running, _number_in_daytime
from tests.helpers import DATA, dialguard, free_port

pytestmark = pytest.mark.slow

PASSWORD = "softphone-secret-77"


def _baresip(home: Path, account: str, command: str, seconds: int) -> subprocess.Popen[str]:
    home.mkdir()
    (home / "config").write_text(
        "sip_listen 127.0.0.1:0\n"
        "sip_verify_server no\n"  # the embedded self-signed certificate
        "audio_player aubridge,none\naudio_source aubridge,none\naudio_alert aubridge,none\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aubridge.so\nmodule srtp.so\n"
        "module_app account.so\nmodule_app menu.so\n"
    )
    (home / "accounts").write_text(account + "\n")
    return subprocess.Popen(
        ["baresip", "-f", str(home), "-e", command, "-t", str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_baresip_call_through_dialguard_up_is_bridged_and_recorded(
    dialguard_env: dict[str, str], database_url: str, tmp_path: Path, transport: str
) -> None:
    trunk_port = free_port(socket.SOCK_DGRAM)
    env = dialguard_env | {
        "DIALGUARD_DATABASE_URL": database_url,
        "DIALGUARD_TRUNK_URI": f"sip:127.0.0.1:{trunk_port}",
        "DIALGUARD_CALLER_IDS": "+861058000000",
        "DIALGUARD_DIALER_WORKERS": "1",
    }
    for args in (
        ["admin", "create-user", "agent1", "--role", "agent", "--password-stdin"],
        ["admin", "set-sip-password", "agent1", "--password-stdin"],
    ):
        made = dialguard(args, env, stdin=f"{PASSWORD}\n")
        assert made.returncode == 0, made.stderr
    product = Running(env, tmp_path / "up.log")
    phone = None
    try:
        product.wait_green(GREEN_WITHIN)
        number = _number_in_daytime(datetime.now(UTC))
        scenario = (DATA / "sipp" / "b2b_carrier_answer.xml").read_text()
        answering = tmp_path / "carrier.xml"
        answering.write_text(scenario.replace("\\+8613800138000", number.replace("+", "\\+")))
        carrier = Carrier(answering, trunk_port)
        port = env["DIALGUARD_SIP_TLS_PORT" if transport == "tls" else "DIALGUARD_SIP_PORT"]
        account = f"<sip:agent1@127.0.0.1:{port};transport={transport}>;auth_pass={PASSWORD};"
        account += "mediaenc=srtp-mand;regint=0" if transport == "tls" else "regint=0"
        phone = _baresip(tmp_path / "baresip", account, f"d {number}", seconds=12)
        out, _ = phone.communicate(timeout=60)
        rc, carrier_out = carrier.result()
        assert rc == 0, carrier_out + out[-2000:] + product.log.read_text()[-3000:]
        sessions = session_factory(make_engine(database_url))
        deadline = time.monotonic() + 90
        rec = attempt = None
        while time.monotonic() < deadline:
            with sessions() as session:
                rec = session.scalar(select(Recording))
                attempt = session.scalar(select(CallAttempt))
            if rec is not None and rec.status is RecordingStatus.STORED:
                break
            time.sleep(1)
        assert rec is not None and rec.status is RecordingStatus.STORED, product.log.read_text()
        assert attempt is not None and attempt.recording_id == rec.id
        assert attempt.answered, out[-2000:]
        assert (rec.agent, rec.channels) == ("agent1", 2)
        assert rec.duration_s > 2.0, out[-3000:] + product.log.read_text()[-4000:]
        if transport == "tls":  # the media was encrypted between softphone and worker
            assert "SRTP is Enabled" in out, out[-3000:]
    finally:
        if phone is not None and phone.poll() is None:
            phone.kill()
        product.close()
