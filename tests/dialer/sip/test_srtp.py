"""Encrypted media between the agent's softphone and the worker, per the SRTP policy.

The policy itself is a table (`decide`); the worker is checked with real peers
on loopback: Debian's baresip calling with SRTP (SDES) through a worker whose
policy requires it, the carrier (SIPp) answering with plain RTP, and SIPp
offering plain RTP as an agent, which must be refused before any trunk call.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import Settings
from api.wiring import dialer_config
from dialer.sip.config import B2buaConfig
from dialer.sip.media_policy import (
    DEFAULT_SRTP,
    Srtp,
    SrtpPolicy,
    Verdict,
    client_transport,
    decide,
    read_offer,
)
from dialer.sip.probe import wait_answering
from tests.dialer.sip.test_b2bua import (
    NUMBER,
    Carrier,
    Server,
    SilentTrunk,
    _serve,
    channel_rms,
    refused,
)
from tests.helpers import espeak_wav, free_port

# --- the policy, as a table ------------------------------------------------------------------


def _sdp(profile: str = "RTP/AVP", *attrs: str) -> str:
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio 4000 {profile} 8 0",
        "a=rtpmap:8 PCMA/8000",
        *attrs,
    ]
    return "\r\n".join(lines) + "\r\n"


CRYPTO = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
FINGERPRINT = "a=fingerprint:sha-256 AB:CD:EF"
PLAIN = _sdp()
SDES_BEST_EFFORT = _sdp("RTP/AVP", CRYPTO)  # baresip's `srtp`: AVP with keys
SDES_MANDATORY = _sdp("RTP/SAVP", CRYPTO)  # baresip's `srtp-mand`
DTLS = _sdp("UDP/TLS/RTP/SAVP", FINGERPRINT)
SAVP_NO_KEYS = _sdp("RTP/SAVP")
GCM_ONLY = _sdp("RTP/AVP", CRYPTO.replace("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM"))
DEFAULT = SrtpPolicy.parse(DEFAULT_SRTP)
OFF = SrtpPolicy.parse("off")
REQUIRED = SrtpPolicy.parse("required")


@pytest.mark.parametrize(
    ("policy", "transport", "sdp", "verdict", "why"),
    [
        (DEFAULT, "udp", PLAIN, Verdict.PLAIN, "plain RTP allowed over udp"),
        (DEFAULT, "tcp", PLAIN, Verdict.PLAIN, "plain RTP allowed over tcp"),
        (DEFAULT, "tls", PLAIN, Verdict.REFUSE, "plain RTP is refused over tls"),
        (DEFAULT, "udp", SDES_BEST_EFFORT, Verdict.SRTP, "SRTP (SDES) over udp"),
        (DEFAULT, "tls", SDES_BEST_EFFORT, Verdict.SRTP, "SRTP (SDES) over tls"),
        (DEFAULT, "tls", SDES_MANDATORY, Verdict.SRTP, "SRTP (SDES) over tls"),
        (DEFAULT, "udp", DTLS, Verdict.REFUSE, "DTLS-SRTP is not supported"),
        (DEFAULT, "udp", SAVP_NO_KEYS, Verdict.REFUSE, "RTP/SAVP offered without a=crypto"),
        (DEFAULT, "tls", "", Verdict.REFUSE, "put an SRTP offer (a=crypto) in the INVITE"),
        (DEFAULT, "udp", "", Verdict.PLAIN, "no SDP offer"),
        (DEFAULT, "sctp", PLAIN, Verdict.REFUSE, "refused over sctp"),  # unknown: strictest
        (REQUIRED, "udp", PLAIN, Verdict.REFUSE, "plain RTP is refused over udp"),
        (REQUIRED, "udp", SDES_MANDATORY, Verdict.SRTP, "SRTP (SDES) over udp"),
        (DEFAULT, "udp", GCM_ONLY, Verdict.PLAIN, "plain RTP allowed"),  # pjsua answers plain
        (DEFAULT, "tls", GCM_ONLY, Verdict.REFUSE, "offer AES_CM_128_HMAC_SHA1_80"),
        (OFF, "tls", PLAIN, Verdict.PLAIN, "plain RTP allowed"),
        (OFF, "udp", SDES_BEST_EFFORT, Verdict.PLAIN, "plain RTP allowed"),  # keys ignored
        (OFF, "udp", SDES_MANDATORY, Verdict.REFUSE, "SRTP is off on this server"),
    ],
)
def test_media_decision(
    policy: SrtpPolicy, transport: str, sdp: str, verdict: Verdict, why: str
) -> None:
    decision = decide(policy, transport, sdp)
    assert decision.verdict is verdict
    assert why in decision.why


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("udp=optional,tcp=optional,tls=required", (Srtp.OPTIONAL, Srtp.OPTIONAL, Srtp.REQUIRED)),
        ("required", (Srtp.REQUIRED,) * 3),
        (" Off ", (Srtp.OFF,) * 3),
        ("udp=required", (Srtp.REQUIRED, Srtp.OPTIONAL, Srtp.REQUIRED)),  # the rest: defaults
        ("tls=optional, tcp=required", (Srtp.OPTIONAL, Srtp.REQUIRED, Srtp.OPTIONAL)),
    ],
)
def test_policy_setting(text: str, rules: tuple[Srtp, Srtp, Srtp]) -> None:
    policy = SrtpPolicy.parse(text)
    assert policy.rules() == rules
    assert SrtpPolicy.parse(str(policy)) == policy


@pytest.mark.parametrize("text", ["udp=off", "yes", "udp=maybe", "sctp=required", ""])
def test_policy_setting_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="srtp"):
        SrtpPolicy.parse(text)


@pytest.mark.parametrize(
    ("vias", "edge_says", "transport"),
    [
        (["SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1"], None, "udp"),
        (["SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK1", "SIP/2.0/UDP a"], None, "tls"),
        (["SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKedge"], "TLS", "tls"),  # behind the edge
        ([], None, "udp"),
    ],
)
def test_client_transport(vias: list[str], edge_says: str | None, transport: str) -> None:
    assert client_transport(vias, edge_says) == transport


def test_offer_reading_looks_at_the_audio_stream_only() -> None:
    sdp = _sdp("RTP/AVP") + "m=video 4002 RTP/SAVP 96\r\n" + CRYPTO + "\r\n"
    offer = read_offer(sdp)
    assert offer is not None and (offer.profile, offer.suites) == ("RTP/AVP", ())


# --- a worker with real peers ------------------------------------------------------------------


@contextlib.contextmanager
def _worker(recordings: Path, srtp: str) -> Iterator[Server]:
    ctx = multiprocessing.get_context("spawn")
    port, trunk_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    config = B2buaConfig(
        host="127.0.0.1",
        port=port,
        trunk=f"127.0.0.1:{trunk_port}",
        caller_ids=["+861058000000"],
        recording_dir=recordings,
        secret=os.urandom(32),
        srtp=SrtpPolicy.parse(srtp),
    )
    records, stop = ctx.Queue(), ctx.Event()
    process = ctx.Process(target=_serve, args=(config, records, stop))
    process.start()
    try:
        wait_answering("127.0.0.1", port, process)
        yield Server(port, trunk_port, recordings, records, stop)
    finally:
        stop.set()
        process.join(15)
        if process.is_alive():
            process.kill()


def baresip_call(work: Path, port: int, mediaenc: str, talk_s: int = 4) -> str:
    """Debian's baresip as agent1, dialing NUMBER with `mediaenc` and speaking a line.

    It hangs up when its audio file ends; its console output is returned.
    """
    said = espeak_wav("Hello, this is agent one about your loan.", work / "said.wav")
    padded = work / "padded.wav"
    subprocess.run(
        [
            *("ffmpeg", "-loglevel", "error", "-y", "-i", str(said)),
            *("-af", f"apad=whole_dur={talk_s}", str(padded)),
        ],
        check=True,
    )
    home = work / "baresip"
    home.mkdir(exist_ok=True)
    (home / "config").write_text(
        "sip_listen 127.0.0.1:0\n"
        "audio_player aubridge,none\n"
        f"audio_source aufile,{padded}\n"
        "audio_alert aubridge,none\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule srtp.so\n"
        "module_app account.so\nmodule_app menu.so\n"
    )
    (home / "accounts").write_text(
        f"<sip:agent1@127.0.0.1:{port};transport=udp>;auth_pass=secret;regint=0;"
        f"mediaenc={mediaenc}\n"
    )
    done = subprocess.run(
        ["baresip", "-f", str(home), "-e", f"d {NUMBER}", "-t", str(talk_s + 8)],
        capture_output=True,
        text=True,
        timeout=talk_s + 30,
        check=False,
    )
    return done.stdout + done.stderr


BARESIP = shutil.which("baresip") is not None and Path("/usr/lib/baresip/modules/srtp.so").exists()


@pytest.mark.skipif(not BARESIP, reason="baresip with its srtp module is not installed")
def test_baresip_srtp_call_is_bridged_and_recorded(tmp_path: Path) -> None:
    """SRTP from the softphone, plain RTP to the carrier, and both parties in the recording."""
    with _worker(tmp_path, "required") as worker:
        carrier = Carrier("b2b_carrier_answer.xml", worker.trunk_port)
        heard = baresip_call(tmp_path, worker.port, "srtp-mand")
        rc, out = carrier.result()
        record, live = worker.record()
    assert "Call established" in heard, heard[-3000:]
    assert "SRTP is Enabled" in heard, "the worker answered the offer with SDES keys"
    assert rc == 0, out
    assert live == 0
    assert record.answered and record.recording is not None
    duration, agent_rms, debtor_rms = channel_rms(record.recording)
    assert duration > 2
    assert agent_rms > 100, "the agent's SRTP audio was decrypted into the recording"
    assert debtor_rms > 100


def test_required_refuses_plain_rtp_and_dials_nothing(tmp_path: Path) -> None:
    with _worker(tmp_path, "required") as worker, SilentTrunk(worker.trunk_port):
        status, line = refused(worker, tmp_path)
        worker.no_record()
    assert status == 488
    assert "plain RTP is refused over udp" in line


def test_the_setting_reaches_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALGUARD_SRTP", "TLS=required, udp=required")
    settings = Settings(trunk_uri="sip:carrier.example:5060", caller_ids="+861058000000")
    assert settings.srtp == "udp=required,tcp=optional,tls=required"
    config = dialer_config(settings, "1")
    assert config.srtp.rules() == (Srtp.REQUIRED, Srtp.OPTIONAL, Srtp.REQUIRED)
    monkeypatch.setenv("DIALGUARD_SRTP", "udp=off")
    with pytest.raises(ValidationError, match="set it alone: off"):
        Settings()
