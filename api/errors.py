"""Errors of the api package; each carries a one-line operator `hint`."""

from __future__ import annotations

from recording.errors import HintedError


class ApiError(HintedError):
    """Base of every error raised by this package."""


class ConfigError(ApiError):
    """A setting is invalid."""


class UserError(ApiError):
    """An account cannot be created or changed as asked."""


class DatabaseUnavailable(ApiError):
    """The configured database cannot be reached or is not a database URL."""
