"""`shoulders` entry point: one typer app; each area adds its commands from its own module."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

import typer

from shoulders.cli import (
    backbones_commands,
    compare_commands,
    export_commands,
    predict_commands,
    runs_commands,
    serve_commands,
    train_commands,
)

app = typer.Typer(
    name="shoulders",
    help="Transfer learning that cannot be done wrong: train, evaluate, export and serve an image (or text) "
    "classifier built on a pretrained backbone.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
backbones_commands.register(app)
train_commands.register(app)
predict_commands.register(app)
export_commands.register(app)
serve_commands.register(app)
compare_commands.register(app)
runs_commands.register(app)



def main() -> None:
    try:
        app()
    except SystemExit as stop:
        leave(stop.code)
    leave(0)


def leave(code: int | str | None) -> NoReturn:
    """Exit with ``code`` as ``sys.exit`` would, but skip TensorFlow's interpreter teardown (1-2 s
    after every command that imported it) once the command is finished: the at-exit handlers still
    run (logging, MLflow) and the output is flushed; only the freeing of memory the OS reclaims
    anyway is skipped. Falls back to a normal exit when another thread is still working."""
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, exit status 1
        print(code, file=sys.stderr)
        code = 1
    busy = [thread for thread in threading.enumerate() if thread is not threading.main_thread() and not thread.daemon]
    if "tensorflow" not in sys.modules or busy:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (e.g. `| head`) has nothing left to flush
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
