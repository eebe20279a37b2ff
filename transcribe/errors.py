"""Errors of the transcribe package; each carries a one-line operator `hint`."""

from __future__ import annotations


class TranscribeError(Exception):
    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class ModelNotFound(TranscribeError):
    """The configured Whisper model is neither installed nor a model directory."""


class AudioError(TranscribeError):
    """The audio cannot be transcribed: empty, corrupt, truncated, too long, odd layout."""
