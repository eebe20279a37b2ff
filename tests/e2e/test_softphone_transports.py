"""A softphone on the default settings, over UDP, TCP and TLS (with SRTP, which the default
policy requires there), through `dialguard up`: the Kamailio edge, a pjsua2 worker, the
carrier, the recording.

baresip (Debian's) is the softphone the docs name first; the edge tests prove it reaches a
worker, this one that the whole call is made, recorded and stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recording.models import RecordingStatus
from tests.dialer.edge.test_baresip import BASE_MODULES, _baresip
from tests.e2e.site import AGENT, PASSWORD, answering_carrier, site_with_agent, wait_stored
from tests.e2e.test_up import GREEN_WITHIN, Running, _number_in_daytime

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_baresip_call_through_dialguard_up_is_bridged_and_recorded(
    dialguard_env: dict[str, str], database_url: str, tmp_path: Path, transport: str
) -> None:
    site = site_with_agent(dialguard_env, database_url, workers=1)
    env = site.env
    product = Running(env, tmp_path / "up.log")
    phone = None
    try:
        product.wait_green(GREEN_WITHIN)
        number = _number_in_daytime(datetime.now(UTC))
        carrier = answering_carrier(site, number, tmp_path)
        port = env["DIALGUARD_SIP_TLS_PORT" if transport == "tls" else "DIALGUARD_SIP_PORT"]
        account = f"<sip:{AGENT}@127.0.0.1:{port};transport={transport}>;auth_pass={PASSWORD};"
        account += "mediaenc=srtp-mand;regint=0" if transport == "tls" else "regint=0"
        modules = (*BASE_MODULES, "srtp.so")
        phone = _baresip(tmp_path / "baresip", account, f"d {number}", 12, modules)
        out, _ = phone.communicate(timeout=60)
        rc, carrier_out = carrier.result()
        assert rc == 0, carrier_out + out[-2000:] + product.log.read_text()[-3000:]
        stored = wait_stored(database_url, 90)
        rec, attempt = stored.recording, stored.attempt
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
