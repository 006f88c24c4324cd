"""`shoulders` entry point: one typer app; each area adds its commands from its own module."""

from __future__ import annotations

import typer

from shoulders.cli import (
    backbones_commands,
    compare_commands,
    export_commands,
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
export_commands.register(app)
serve_commands.register(app)
compare_commands.register(app)
runs_commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
