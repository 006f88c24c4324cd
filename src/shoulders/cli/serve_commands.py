"""`shoulders serve`: the HTTP server for a run (see `shoulders.serving`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from shoulders.cli.console import add_command, stderr_console

console = stderr_console()


def register(app: typer.Typer) -> None:
    add_command(app, "serve", serve)


def serve(
    run_path: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")],
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to the network (set an --api-key).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, envvar="SHOULDERS_PORT", help="Port to listen on.")] = 8000,
    format: Annotated[str, typer.Option("--format", help="keras, savedmodel, tflite or onnx (exports must exist and have passed verification).")] = "keras",
    quantize: Annotated[str | None, typer.Option(help="Which TFLite export (default: the most precise one present).")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Micro-batching: most images in one forward pass (1 turns batching off).")] = 16,
    max_wait_ms: Annotated[float, typer.Option(min=0, help="Micro-batching: longest wait for more requests after the first.")] = 5.0,
    max_queue: Annotated[int, typer.Option(min=1, help="Requests waiting beyond this get 503.")] = 256,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before a waiting request gets 504.")] = 30.0,
    max_body_mb: Annotated[float, typer.Option(min=0.01, help="Largest request body accepted (413 beyond).")] = 10.0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Largest image accepted, in pixels (decompression bombs get 413).")] = 40_000_000,
    max_texts: Annotated[int, typer.Option(min=1, help="Text runs: most texts in one request (413 beyond).")] = 64,
    max_text_chars: Annotated[int, typer.Option(min=1, help="Text runs: longest text accepted, in characters (413 beyond).")] = 20_000,
    api_key: Annotated[str | None, typer.Option(envvar="SHOULDERS_API_KEY", help="Require this key (X-API-Key header) on predict routes.", show_default=False)] = None,
) -> None:
    """Serve a run over HTTP: POST /predict, TF Serving's /v1/models/NAME:predict, /metadata, /healthz and a page at /.

    Image runs take an image (raw body or multipart field 'file'); text runs take JSON {"text": "..."} or {"texts": [...]}."""
    import uvicorn

    from shoulders.config import check_number
    from shoulders.data.images import MAX_PIXELS
    from shoulders.runs.reader import load_run
    from shoulders.serving import Limits, ServeSettings, create_app

    check_number("--max-body-mb", max_body_mb, low=0.01, meaning="megabytes a request body may hold")  # before it becomes bytes
    settings = ServeSettings(
        format=format, quantize=quantize, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue, timeout_s=timeout,
        api_key=api_key or None,
        limits=Limits(
            max_body_bytes=int(max_body_mb * 1024 * 1024), max_pixels=min(max_pixels, MAX_PIXELS),
            max_texts=max_texts, max_text_chars=max_text_chars,
        ),
    )
    app = create_app(load_run(run_path), settings)  # a user error (no run, no export, no text extra) exits 2
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        console.print(f"[yellow]warning:[/] serving on {host} without an API key: anyone who can reach it can use it.")
    console.print(f"serving {run_path} ({format}) on http://{host}:{port}/  (pid {os.getpid()})")
    uvicorn.run(app, host=host, port=port, log_level="warning")
