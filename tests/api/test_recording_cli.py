"""`dialguard recording store/fetch/verify` as an operator runs them, with the embedded S3."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import pytest

from tests.audio import call_audio
from tests.helpers import dialguard

pytestmark = pytest.mark.slow


def test_import_fetch_and_verify(tmp_path: Path, dialguard_env: dict[str, str]) -> None:
    capture = call_audio(
        tmp_path / "outside.wav",
        [("agent", 0.2, "This call is recorded."), ("debtor", 2.5, "Fine.")],
        seconds=4.0,
    )
    stored = dialguard(
        ["recording", "store", str(capture), "--call-id", "bank-42", "--agent", "agent7"],
        dialguard_env,
    )
    assert stored.returncode == 0, stored.stderr
    match = re.match(
        r"([0-9a-f]{32}) stored in both copies \(4\.0 s, retained until (\d{4})", stored.stdout
    )
    assert match, stored.stdout
    recording_id = match.group(1)
    assert int(match.group(2)) >= 2028

    out = tmp_path / "pulled.wav"
    fetched = dialguard(["recording", "fetch", recording_id, "-o", str(out)], dialguard_env)
    assert fetched.returncode == 0, fetched.stderr
    with wave.open(str(out)) as wav:
        assert wav.getnchannels() == 2
        assert abs(wav.getnframes() / wav.getframerate() - 4.0) < 1.0

    checked = dialguard(["recording", "verify", "--all"], dialguard_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 recording(s) checked, 0 copy failure(s)" in checked.stdout

    again = dialguard(["recording", "store", str(capture), "--call-id", "bank-42"], dialguard_env)
    assert again.returncode == 1
    assert "call bank-42 already has a recording" in again.stderr
    assert "Traceback" not in again.stderr

    missing = dialguard(["recording", "fetch", "0" * 32, "-o", str(out)], dialguard_env)
    assert missing.returncode == 1 and "no recording" in missing.stderr
