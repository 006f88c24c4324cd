"""`shoulders backbones` and `shoulders classify`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shoulders.cli.console import add_command, stdout_console

SAMPLES = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle")


def register(app: typer.Typer) -> None:
    add_command(app, "backbones", backbones_table)
    add_command(app, "classify", classify)


def backbones_table() -> None:
    """List every registered backbone (image) and encoder (text): input size, parameters, feature width, weights source, offline or not."""
    from shoulders import backbones

    table = Table(title="Registered backbones (bundled ones work offline)")
    for column in ("name", "kind", "input size", "params", "feature width", "preprocessing", "weights", "offline"):
        table.add_column(column)
    for name in backbones.names():
        spec = backbones.get(name)
        table.add_row(
            name,
            spec.kind,
            f"{spec.image_size} px" if spec.kind == "image" else f"<= {spec.max_length} tokens",
            f"{spec.params / 1e6:.1f}M",
            str(spec.feature_width),
            spec.preprocessing.description,
            spec.weights_origin,
            "yes" if spec.offline else "no (downloads)",
        )
    stdout_console().print(table)


def classify(
    images: Annotated[list[Path] | None, typer.Argument(help="Image files to classify.", show_default=False)] = None,
    backbone: Annotated[str, typer.Option(help="A registered backbone with an ImageNet head.")] = "efficientnet_lite0",
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=1000, help="How many classes to print.")] = 5,
    sample: Annotated[
        list[str] | None, typer.Option(help=f"A built-in sample photo from scikit-image: {', '.join(SAMPLES)}.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the top ImageNet classes of each image with the pretrained network (a check that weights are genuine)."""
    from shoulders.backbones.classify import classify_images, sample_image

    sources: list[tuple[str, object]] = [(str(path), path) for path in images or []]
    for name in sample or []:
        if name not in SAMPLES:
            raise typer.BadParameter(f"unknown sample {name!r}; choose from {', '.join(SAMPLES)}", param_hint="--sample")
        sources.append((f"sample:{name}", sample_image(name)))
    if not sources:
        raise typer.BadParameter("give at least one IMAGE file or --sample NAME", param_hint="IMAGES")
    results = classify_images([source for _, source in sources], backbone=backbone, top_k=top_k)
    if as_json:
        typer.echo(json.dumps([{"image": label, "top": top} for (label, _), top in zip(sources, results)], indent=2))
        return
    console = stdout_console()
    for (label, _), top in zip(sources, results):
        table = Table(title=f"{label} ({backbone})", title_justify="left")
        for column in ("rank", "class", "index", "probability"):
            table.add_column(column)
        for rank, entry in enumerate(top, 1):
            table.add_row(str(rank), entry["name"], str(entry["index"]), f"{entry['probability']:.3f}")
        console.print(table)
