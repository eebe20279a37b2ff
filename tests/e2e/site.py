"""A site for the end-to-end calls: `dialguard up` configured with a trunk, caller IDs and one
agent with a SIP password, the carrier answering on that trunk, and the wait for the recording.

The calls through the whole product (SIPp's agent, baresip over each transport, the caps in
flight) set this up alike; one copy keeps them dialing the same site. Kept out of test_up.py,
which imports it, so that nothing here depends on a test module that depends on it.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from dialer.models import CallAttempt
from recording.db.engine import make_engine, session_factory
from recording.models import Recording, RecordingStatus
from tests.dialer.sip.test_b2bua import Carrier
from tests.helpers import DATA, dialguard, free_port
from transcribe.models import JobStatus, TranscriptionJob

AGENT = "agent1"
PASSWORD = "softphone-secret-77"
CALLER_ID = "+861058000000"


@dataclass(frozen=True)
class Site:
    """The environment `dialguard up` runs with, and the UDP port its trunk (the carrier) has."""

    env: dict[str, str]
    trunk_port: int


def site_with_agent(
    dialguard_env: dict[str, str],
    database_url: str,
    workers: int,
    caller_ids: str = CALLER_ID,
    **more: str,
) -> Site:
    """A site whose trunk is a free local port, with `AGENT` able to call on `PASSWORD`.

    `more` are further settings (DIALGUARD_… = value) a test needs on top. The agent is
    made through the CLI, before `dialguard up` starts, as an operator would.
    """
    trunk_port = free_port(socket.SOCK_DGRAM)
    env = dialguard_env | {
        "DIALGUARD_DATABASE_URL": database_url,
        "DIALGUARD_TRUNK_URI": f"sip:127.0.0.1:{trunk_port}",
        "DIALGUARD_CALLER_IDS": caller_ids,
        "DIALGUARD_DIALER_WORKERS": str(workers),
        **more,
    }
    for args in (
        ["admin", "create-user", AGENT, "--role", "agent", "--password-stdin"],
        ["admin", "set-sip-password", AGENT, "--password-stdin"],
    ):
        made = dialguard(args, env, stdin=f"{PASSWORD}\n")
        assert made.returncode == 0, made.stderr
    return Site(env, trunk_port)


def answering_carrier(site: Site, number: str, directory: Path) -> Carrier:
    """The carrier on the site's trunk, answering a call to `number` (and refusing others).

    The stored scenario expects the Shanghai number; the caller picks whichever number is in
    daytime now, so the scenario is rewritten for it into `directory`.
    """
    scenario = (DATA / "sipp" / "b2b_carrier_answer.xml").read_text()
    answering = directory / "carrier.xml"
    answering.write_text(scenario.replace("\\+8613800138000", number.replace("+", "\\+")))
    return Carrier(answering, site.trunk_port)


@dataclass(frozen=True)
class Stored:
    """What the call left in the database: its recording, its booking, its transcription."""

    recording: Recording | None
    attempt: CallAttempt | None
    job: TranscriptionJob | None


def wait_stored(database_url: str, within: float, transcribed: bool = False) -> Stored:
    """The first call's rows once its recording is STORED (and, if `transcribed`, its
    transcription job has ended), or as they are after `within` seconds.

    It does not assert: the caller says what it expected, with the log that explains a miss.
    """
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    deadline = time.monotonic() + within
    try:
        while True:
            with sessions() as session:
                rec = session.scalar(select(Recording))
                attempt = session.scalar(select(CallAttempt))
                job = None
                if rec is not None:
                    job = session.scalar(
                        select(TranscriptionJob).where(TranscriptionJob.recording_id == rec.id)
                    )
            stored = Stored(rec, attempt, job)
            if _done(stored, transcribed) or time.monotonic() >= deadline:
                return stored
            time.sleep(1)
    finally:
        engine.dispose()


def _done(stored: Stored, transcribed: bool) -> bool:
    """Whether the wait is over: stored, and transcription ended when that is awaited too."""
    rec, job = stored.recording, stored.job
    if rec is None or rec.status is not RecordingStatus.STORED:
        return False
    return not transcribed or (job is not None and job.status in (JobStatus.DONE, JobStatus.DEAD))
