"""Consoles for the CLI: tables go to stdout, progress and errors to stderr."""

from __future__ import annotations

from rich.console import Console

PIPE_WIDTH = 200  # not a terminal (a pipe, a file, a test): do not wrap names at 80 columns


def stdout_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPE_WIDTH)


def stderr_console() -> Console:
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=PIPE_WIDTH)
