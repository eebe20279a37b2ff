"""Errors of the api package; each carries a one-line operator `hint`."""

from __future__ import annotations


class ApiError(Exception):
    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class ConfigError(ApiError):
    """A setting is invalid."""


class UserError(ApiError):
    """An account cannot be created or changed as asked."""


class DatabaseUnavailable(ApiError):
    """The configured database cannot be reached or is not a database URL."""
