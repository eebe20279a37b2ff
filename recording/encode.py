"""Encoding a finished call to its stored form: Opus in Ogg.

Measured on this project's machines (docs/recordings.md, "Format"): Opus at
24 kbit/s for the stereo pair stays under 200 KB per call-minute even on
noisy lines, where FLAC of 8 kHz telephone audio needs about 1 MB. The VoIP
application mode favours speech intelligibility, which is what QA listens to
and what Whisper transcribes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydub import AudioSegment
from pydub.exceptions import CouldntDecodeError, CouldntEncodeError

from recording.errors import RecordingError

BITRATE = "24k"
CONTENT_TYPE = "audio/ogg; codecs=opus"


class AudioFormatError(RecordingError):
    """A capture file cannot be read or encoded."""


@dataclass(frozen=True)
class Encoded:
    path: Path
    duration: float  # seconds of call, from the capture itself
    channels: int
    size: int


def encode_call(wav: Path, out: Path, bitrate: str = BITRATE) -> Encoded:
    """`wav` (agent left, debtor right, or agent alone) to Ogg/Opus at `out`."""
    if not wav.is_file() or wav.stat().st_size == 0:
        raise AudioFormatError(f"{wav.name} is missing or empty", hint="nothing was captured")
    try:
        audio = AudioSegment.from_file(wav)
    except (CouldntDecodeError, IndexError, ValueError) as exc:
        raise AudioFormatError(
            f"{wav.name} is not readable audio ({type(exc).__name__})",
            hint="repair the capture file before encoding it",
        ) from None
    if audio.channels not in (1, 2) or len(audio) == 0:
        raise AudioFormatError(
            f"{wav.name} has {audio.channels} channels and {len(audio)} ms",
            hint="a call recording is mono or stereo and not empty",
        )
    tmp = out.with_name(out.name + ".part")
    try:
        audio.export(
            tmp,
            format="ogg",
            codec="libopus",
            bitrate=bitrate,
            parameters=["-application", "voip", "-vbr", "on"],
        )
    except CouldntEncodeError as exc:
        tmp.unlink(missing_ok=True)
        raise AudioFormatError(
            f"ffmpeg could not encode {wav.name}", hint="check that ffmpeg has libopus"
        ) from exc
    tmp.replace(out)  # readers never see half an encoding
    return Encoded(out, len(audio) / 1000.0, audio.channels, out.stat().st_size)
