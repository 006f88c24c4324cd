"""Tiny trained runs shared by the export and serving tests, each trained and exported once per session:
an image run (3 colours, 32 px) and the text run of tests/conftest.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_ROOT_CONFTEST = Path(__file__).resolve().parent / "conftest.py"


def make_colour_folder(root: Path) -> Path:
    """tests/conftest.py's generator, loaded by path (every conftest module is named "conftest")."""
    spec = importlib.util.spec_from_file_location("shoulders_tests_root_conftest", _ROOT_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_colour_folder(root)


def tiny_run(base: Path):
    """Train (or reuse, when a sibling test folder already did in this session) the tiny run under ``base``."""
    import shoulders

    run_path = base / "tiny-run"
    if (run_path / "metrics.json").exists():
        return shoulders.load_run(run_path)
    folder = make_colour_folder(base / "tiny-photos")
    return shoulders.train(
        folder, out=run_path, image_size=32, batch_size=8, epochs_head=40, epochs_finetune=1, patience=5, lr=1e-2,
        augment=False, progress=False, cache_dir=base / "tiny-cache",
    )


def exported_run(base: Path):
    """The tiny run with SavedModel and ONNX (through the CLI), TFLite float16 and TFLite int8 exports."""
    from shoulders.export import export_run, read_manifest

    run = tiny_run(base)
    exports = read_manifest(run.path)["exports"]
    if "savedmodel" not in exports:
        result = cli().invoke(app_with_commands(), ["export", str(run.path), "--format", "savedmodel"])
        (base / "export-cli-output.txt").write_text(result.output)
        assert result.exit_code == 0, result.output
    for quantize in ("float16", "int8"):
        if f"tflite_{quantize}" not in exports:
            export_run(run, "tflite", quantize)
    if "onnx" not in exports:
        result = cli().invoke(app_with_commands(), ["export", str(run.path), "--format", "onnx"])
        assert result.exit_code == 0, result.output
    return run


TEXT_EXPORTS = (("keras", "none"), ("tflite", "none"), ("tflite", "dynamic"))


def exported_text_run(run):
    """The tiny text run (tests/conftest.py tiny_text_run) with a SavedModel (through the CLI, its output
    kept beside the run), a .keras copy and TFLite none and dynamic exports."""
    from shoulders.export import export_run, read_manifest

    exports = read_manifest(run.path)["exports"]
    if "savedmodel" not in exports:
        result = cli().invoke(app_with_commands(), ["export", str(run.path), "--format", "savedmodel"])
        (run.path.parent / "export-cli-output.txt").write_text(result.output)
        assert result.exit_code == 0, result.output
    for format, quantize in TEXT_EXPORTS:
        if (format if quantize == "none" else f"{format}_{quantize}") not in exports:
            export_run(run, format, quantize)
    return run


def app_with_commands():
    """A typer app with the export and serve commands (the real one is wired in shoulders.cli.main)."""
    import typer

    from shoulders.cli import export_commands, serve_commands

    app = typer.Typer(pretty_exceptions_enable=False)
    export_commands.register(app)
    serve_commands.register(app)
    return app


def cli():
    from typer.testing import CliRunner

    return CliRunner()
