"""Errors of the QA package; each carries a one-line `hint` for the person who can fix it.

A pack error is the pack author's to fix (a line in a YAML file); a transcript
error is whoever produced the transcript's. Keeping them apart lets the CLI
say which file to open without parsing messages.
"""

from __future__ import annotations

from recording.errors import HintedError


class QaError(HintedError):
    """Base of every error raised by this package."""


class PackError(QaError):
    """A rule pack cannot be found, parsed or validated; the message names file, line and field."""


class TranscriptError(QaError):
    """A transcript is not the JSON `dialguard transcribe --json` prints."""


class ReviewError(QaError):
    """A review step that the flag's state, the person or the missing comment does not allow."""
