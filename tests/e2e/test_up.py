"""`dialguard up` end to end: all green within 60 s, supervised, and nothing left behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psutil
import pytest
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from sqlalchemy import select

from api.settings import Settings
from api.wiring import storage_copies, storage_settings
from dialer.sip.probe import port_in_use
from recording.db.engine import as_utc, make_engine, session_factory
from recording.db.heartbeats import Heartbeat
from recording.models import Recording, RecordingStatus
from tests.dialer.sip.test_b2bua import channel_rms
from tests.e2e.site import AGENT, PASSWORD, answering_carrier, site_with_agent, wait_stored
from tests.helpers import DIALGUARD, dialguard, free_port, run_sipp
from transcribe.models import JobStatus

pytestmark = pytest.mark.slow

GREEN_WITHIN = 60.0


class Running:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self._log_handle = log.open("w")
        self.process = subprocess.Popen(
            [str(DIALGUARD), "up"], env=env, stdout=self._log_handle, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{env['DIALGUARD_API_PORT']}/healthz"

    def wait_green(self, timeout: float) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                answer = httpx.get(self.url, timeout=10.0)
                last = answer.json()
                if answer.status_code == 200:
                    return answer.json()  # type: ignore[no-any-return]
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(
            f"not green within {timeout} s: {last}\n{self.log.read_text()[-3000:]}"
        )

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log_handle.close()


@pytest.fixture
def running(dialguard_env: dict[str, str], database_url: str, tmp_path: Path) -> Iterator[Running]:
    """`dialguard up` on each database backend, with the embedded S3."""
    env = dialguard_env | {"DIALGUARD_DATABASE_URL": database_url, "DIALGUARD_LOG_LEVEL": "INFO"}
    product = Running(env, tmp_path / "up.log")
    yield product
    product.close()


def _all_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_up_is_green_then_ctrl_c_stops_everything(running: Running) -> None:
    started = time.monotonic()
    health = running.wait_green(GREEN_WITHIN)
    took = time.monotonic() - started
    components = health["components"]
    assert isinstance(components, dict)
    assert set(components) == {
        "database",
        "storage",
        "storage-replica",
        "dialer",
        "uploader",
        "transcriber",
        "qa",
    }
    assert all(c["ok"] for c in components.values())
    print(f"green after {took:.1f} s")

    doctor = dialguard(["doctor"], running.env)
    assert doctor.returncode == 0, doctor.stdout
    assert "held by running Dialguard" in doctor.stdout
    assert run_sipp("options.xml", f"127.0.0.1:{running.env['DIALGUARD_SIP_PORT']}").returncode == 0

    tree = running.tree()
    assert any(p.name() == "weed" for p in tree)
    assert len(tree) >= 5  # weed, dialer, uploader, transcriber, api
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(30) == 0
    assert _all_gone(tree, 5) == []
    assert port_in_use("127.0.0.1", int(running.env["DIALGUARD_SIP_PORT"])) == []
    assert port_in_use("127.0.0.1", int(running.env["DIALGUARD_API_PORT"])) == []
    assert "Dialguard is up" in running.log.read_text()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_crashed_worker_is_restarted_and_sigterm_stops_all(running: Running) -> None:
    running.wait_green(GREEN_WITHIN)
    engine = make_engine(running.env["DIALGUARD_DATABASE_URL"])
    with session_factory(engine)() as session:
        uploader_pid = session.scalar(
            select(Heartbeat.pid).where(Heartbeat.component == "uploader")
        )
    assert uploader_pid is not None
    psutil.Process(uploader_pid).kill()
    deadline = time.monotonic() + 30
    fresh: set[int] = set()
    while not fresh and time.monotonic() < deadline:
        time.sleep(0.5)
        with session_factory(engine)() as session:
            rows = session.scalars(select(Heartbeat.pid).where(Heartbeat.component == "uploader"))
            fresh = set(rows) - {uploader_pid}
    assert fresh, "the killed uploader was not restarted"
    assert psutil.pid_exists(fresh.pop())
    running.wait_green(GREEN_WITHIN)
    engine.dispose()
    tree = running.tree()
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(30) == 0
    assert _all_gone(tree, 5) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_killed_supervisor_takes_its_children_along(running: Running) -> None:
    running.wait_green(GREEN_WITHIN)
    tree = running.tree()
    running.process.kill()
    running.process.wait()
    left = _all_gone(tree, 45)  # each child stops gracefully on its own SIGTERM
    assert left == [], [(p.pid, p.name(), p.cmdline()[:3]) for p in left]


def _number_in_daytime(now: datetime) -> str:
    """A number whose zone is between 09:00 and 20:00 now, so no preset refuses the hour."""
    for number, zone in (
        ("+8613800138000", "Asia/Shanghai"),
        ("+442079460000", "Europe/London"),
        ("+12125550123", "America/New_York"),
        ("+13105550123", "America/Los_Angeles"),
    ):
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 20:
            return number
    raise AssertionError("no zone is in daytime")  # the four cover every UTC hour


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_agent_call_is_bridged_recorded_stored_twice_and_transcribed(
    dialguard_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    """An agent's softphone call through `dialguard up` ends as a searchable recording."""
    site = site_with_agent(dialguard_env, database_url, workers=2)
    env = site.env
    product = Running(env, tmp_path / "up.log")
    try:
        product.wait_green(GREEN_WITHIN)
        number = _number_in_daytime(datetime.now(UTC))
        carrier = answering_carrier(site, number, tmp_path)
        sip = int(env["DIALGUARD_SIP_PORT"])
        talk = run_sipp(
            "edge_agent_calls_talks.xml",  # the Kamailio edge passes it to a dialer worker
            f"127.0.0.1:{sip}",
            "-s",
            number,
            "-au",
            AGENT,
            "-ap",
            PASSWORD,
            "-auth_uri",
            f"{number}@127.0.0.1:{sip}",
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            "-d",
            "4000",
        )
        assert talk.returncode == 0, talk.stdout[-3000:] + product.log.read_text()[-3000:]
        rc, out = carrier.result()
        assert rc == 0, out
        stored = wait_stored(database_url, 180, transcribed=True)
        rec, attempt, job = stored.recording, stored.attempt, stored.job
        assert rec is not None and rec.status is RecordingStatus.STORED, product.log.read_text()
        assert attempt is not None and attempt.recording_id == rec.id
        assert (rec.agent, rec.channels, attempt.caller_id) == ("agent1", 2, "+861058000000")
        assert 3.0 < rec.duration_s < 8.0
        assert job is not None and job.status is JobStatus.DONE, job.last_error if job else None
        verified = dialguard(["recording", "verify", rec.id], env)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        _stored_twice_locked_and_sealed(env, rec, tmp_path)
        log = product.log.read_text()
        assert number[1:] not in log and number[-8:] not in log, "a full number reached the log"
        product.process.send_signal(signal.SIGINT)
        assert product.process.wait(30) == 0
    finally:
        product.close()


def _stored_twice_locked_and_sealed(env: dict[str, str], rec: Recording, tmp_path: Path) -> None:
    """Both buckets hold the call sealed and locked; it decrypts to both parties' audio."""
    fetched = tmp_path / "fetched.wav"
    got = dialguard(["recording", "fetch", rec.id, "-o", str(fetched)], env)
    assert got.returncode == 0, got.stderr
    duration, agent_rms, debtor_rms = channel_rms(fetched)
    assert abs(duration - rec.duration_s) < 1.0, (duration, rec.duration_s)
    assert agent_rms > 100 and debtor_rms > 100, "both parties are heard, each on its channel"
    settings = Settings(data_dir=Path(env["DIALGUARD_DATA_DIR"]))
    with storage_settings(settings) as reachable:
        for copy in storage_copies(reachable):
            raw = copy.client.get_object(copy.target.bucket, rec.object_key).read()
            assert len(raw) > 10_000
            assert b"OggS" not in raw and b"OpusHead" not in raw and b"RIFF" not in raw
            retention = copy.client.get_object_retention(copy.target.bucket, rec.object_key)
            assert retention is not None and retention.mode == COMPLIANCE
            assert retention.retain_until_date >= as_utc(rec.recorded_at) + timedelta(days=730)
            version = rec.primary_version if copy.name == "primary" else rec.replica_version
            with pytest.raises(S3Error) as refused:
                copy.client.remove_object(copy.target.bucket, rec.object_key, version_id=version)
            assert refused.value.code == "AccessDenied"
