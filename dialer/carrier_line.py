"""The test carrier's spoken debtor line: generated once with espeak-ng, kept in DATA_DIR.

The built-in test carrier (dialer/sip/builtin_carrier.py) answers every call
with one short line, as a debtor would, so a first call on a fresh install is
recorded, transcribed and QA-checked like any other. Both languages are made
at its first start, 8 kHz mono 16-bit PCM like the telephone audio around it.

The English line is played unless DIALGUARD_TEST_CARRIER_LANGUAGE=zh, on
Chinese sites too: the Chinese line is espeak-ng's Mandarin voice, robotic,
and Whisper hears nonsense in it (shared/FACTS.md; through `dialguard up` it
came out as English words that were never said), while the English one comes
back nearly word for word.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from dialer.errors import DialerError

LINES = {
    "en": (
        "Hello, you have reached the test line. "
        "I got your letter, and I can pay five hundred dollars next Friday. Goodbye."
    ),
    "zh": "你好，这里是测试线路。你们的通知我收到了，下周五我先还五百元。再见。",
}
# en-gb at 140 words a minute is what Whisper base heard best at 8 kHz, word for word
# but for "500" ("test line", "letter", "Friday" included); en-us lost "test" and "letter".
VOICES = {"en": "en-gb", "zh": "cmn"}
SPEED = "140"
RATE = 8000


class CarrierLineUnavailable(DialerError):
    """The test carrier's line cannot be made (espeak-ng or ffmpeg missing or failing)."""

    hint = "install espeak-ng and ffmpeg (make run does), or set DIALGUARD_TEST_CARRIER=off"


def line_path(directory: Path, language: str) -> Path:
    """Where a language's line is kept; named by what it says, so a new wording is remade."""
    said = f"{VOICES[language]}|{SPEED}|{LINES[language]}".encode()
    return directory / f"line-{language}-{hashlib.sha256(said).hexdigest()[:8]}.wav"


def ensure_lines(directory: Path) -> dict[str, Path]:
    """Every language's line, made where missing; an existing one is kept as it is."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = {}
    for language, text in LINES.items():
        out = line_path(directory, language)
        if not out.exists():
            _speak(text, VOICES[language], out)
        made[language] = out
    return made


def _speak(text: str, voice: str, out: Path) -> None:
    for tool in ("espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            raise CarrierLineUnavailable(f"{tool} is not installed: the test carrier has no line")
    raw = out.with_name(f".{out.stem}.{os.getpid()}.raw.wav")
    part = out.with_name(f".{out.stem}.{os.getpid()}.wav")
    try:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", SPEED, "-w", str(raw), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            [
                *("ffmpeg", "-loglevel", "error", "-y", "-i", str(raw)),
                *("-ar", str(RATE), "-ac", "1", "-sample_fmt", "s16", str(part)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        part.replace(out)  # whole or not at all: another start may be making it too
    except (subprocess.SubprocessError, OSError) as exc:
        raise CarrierLineUnavailable(f"making the test carrier's line failed: {exc}") from None
    finally:
        raw.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
