"""Errors of the transcribe package; each carries a one-line operator `hint`."""

from __future__ import annotations

from recording.errors import HintedError


class TranscribeError(HintedError):
    """Base of every error raised by this package."""


class ModelNotFound(TranscribeError):
    """The configured Whisper model is neither installed nor a model directory."""


class AudioError(TranscribeError):
    """The audio cannot be transcribed: empty, corrupt, truncated, too long, odd layout."""
