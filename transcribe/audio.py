"""Decoding call audio into one 16 kHz float array per party."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from transcribe.errors import AudioError
from transcribe.result import Speaker

SAMPLE_RATE = 16000
#: Longer than any call; a larger file is refused rather than exhausting memory.
MAX_SECONDS = 4 * 3600

Channels = list[tuple[Speaker, npt.NDArray[np.float32]]]


def _channel_count(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if not streams:
                raise AudioError(f"{path.name} has no audio stream", hint="check the file")
            stream = streams[0]
            if (
                stream.duration
                and stream.time_base
                and stream.duration * stream.time_base > (MAX_SECONDS)
            ):
                raise AudioError(
                    f"{path.name} is longer than {MAX_SECONDS // 3600} hours",
                    hint="split the recording before transcribing it",
                )
            return int(stream.codec_context.channels)
    except av.FFmpegError as exc:
        raise AudioError(
            f"{path.name} is not readable audio ({exc.strerror or type(exc).__name__})",
            hint="check that the file is a complete WAV, Ogg or FLAC recording",
        ) from None


def load_channels(path: Path) -> Channels:
    """Mono is the agent alone; stereo is agent on the left, debtor on the right."""
    from faster_whisper import decode_audio

    if not path.is_file():
        raise AudioError(f"{path} does not exist", hint="check the path")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name} is empty", hint="the recording holds no audio")
    channels = _channel_count(path)
    if channels not in (1, 2):
        raise AudioError(
            f"{path.name} has {channels} channels", hint="expected mono (agent) or stereo"
        )
    try:
        if channels == 1:
            return [(Speaker.AGENT, decode_audio(str(path), SAMPLE_RATE))]
        left, right = decode_audio(str(path), SAMPLE_RATE, split_stereo=True)
    except Exception as exc:  # PyAV raises many kinds for damaged files
        raise AudioError(
            f"{path.name} could not be decoded ({type(exc).__name__})",
            hint="the file is damaged or truncated",
        ) from None
    return [(Speaker.AGENT, left), (Speaker.DEBTOR, right)]
