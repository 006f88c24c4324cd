"""Consoles for the CLI (tables go to stdout, progress and errors to stderr), and the CLI's one handler
of user errors, which every command is registered with."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from shoulders.errors import ShouldersError

PIPE_WIDTH = 200  # not a terminal (a pipe, a file, a test): do not wrap names at 80 columns


def stdout_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPE_WIDTH)


def stderr_console() -> Console:
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=PIPE_WIDTH)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A `ShouldersError` becomes one red line on stderr and exit code 2 (no traceback); anything else
    is a bug and keeps its traceback."""

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ShouldersError as error:
            stderr_console().print(f"[red]error:[/] {escape(str(error))}")  # [brackets] in it are text, not markup
            raise typer.Exit(2) from None

    return guarded


def add_command(app: typer.Typer, name: str, command: Callable[..., Any]) -> None:
    """Register ``command`` as ``name`` on ``app``, behind `user_errors`."""
    app.command(name)(user_errors(command))
