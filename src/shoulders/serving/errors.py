"""The server's errors, each a `ShouldersError` that keeps the builtin it refined.

`RequestError` is an HTTP answer (a status and what to send instead); the others stop the server from
starting, and the CLI prints their message as one line.
"""

from __future__ import annotations

from shoulders.errors import ShouldersError


class RequestError(ShouldersError):
    """A client error: ``status`` and a message that says what to send instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class QueueFullError(ShouldersError, RuntimeError):
    """The request queue is full: the client should retry later (HTTP 503)."""


class ExportMissingError(ShouldersError, FileNotFoundError):
    """The requested format has no verified export in the run folder; the message says how to make one."""


class ServeConfigError(ShouldersError, ValueError):
    """A serve option (or the run's task) the server cannot work with; the message names the accepted values."""
