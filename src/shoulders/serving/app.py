"""The HTTP server: FastAPI routes over a micro-batched model; it stays up whatever clients send.

Routes: ``POST /predict`` (an image run: multipart or raw image; a text run: JSON ``{"text": "..."}`` or
``{"texts": [...]}``), TF Serving's ``POST /v1/models/{name}:predict`` and ``GET /v1/models/{name}`` (name:
the run folder's name, or ``default``), ``GET /healthz``, ``GET /metadata``, and ``GET /`` (a page to try an
image or a text). An API key, when set, guards the predict routes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from shoulders.run import Run
from shoulders.serving.batching import MicroBatcher, QueueFullError
from shoulders.serving.inputs import Limits, RequestError, decode_image, decode_instances, read_body, upload_bytes
from shoulders.serving.page import page_html
from shoulders.serving.predictors import Predict, load_predictor
from shoulders.serving.texts import instance_texts, request_texts

T = TypeVar("T")


@dataclass(frozen=True)
class ServeSettings:
    """Everything that shapes the server; the CLI flags map one to one onto these fields."""

    format: str = "keras"
    quantize: str | None = None  # which TFLite export (default: the most precise one present)
    max_batch: int = 16
    max_wait_ms: float = 5.0
    max_queue: int = 256
    timeout_s: float = 30.0
    top_k: int = 5
    api_key: str | None = None
    limits: Limits = field(default_factory=Limits)


def create_app(run: Run, settings: ServeSettings | None = None, predictor: Predict | None = None) -> FastAPI:
    """The app for ``run``; ``predictor`` replaces the model (tests use a slow one to fill the queue)."""
    settings = settings or ServeSettings()
    predict = predictor or load_predictor(run, settings.format, settings.quantize)
    batcher = MicroBatcher(predict, settings.max_batch, settings.max_wait_ms, settings.max_queue)
    names = {run.name, "default"}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title=f"shoulders: {run.name}", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(RequestError)
    async def request_error(_: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    def check_key(request: Request) -> None:
        if settings.api_key is None:
            return
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given.encode(), settings.api_key.encode()):
            raise RequestError(401, "missing or wrong API key: send it in the X-API-Key header (or Authorization: Bearer KEY).")

    def check_name(name: str) -> None:
        if name not in names:
            raise RequestError(404, f"no model named {name!r}; this server serves {run.name!r} (also answers to 'default').")

    async def classify(inputs: np.ndarray) -> tuple[np.ndarray, dict]:
        started = time.perf_counter()
        try:
            result = await _with_timeout(batcher.submit(inputs), settings.timeout_s)
        except QueueFullError as error:
            raise RequestError(503, str(error)) from None
        timing = {"latency_ms": round((time.perf_counter() - started) * 1000, 2), "model_ms": round(result.model_ms, 2), "batch_size": result.batch_size}
        return result.probabilities, timing

    async def request_inputs(request: Request) -> tuple[np.ndarray, bool]:
        """The batch a ``/predict`` body holds, and whether it is one input (one answer) or a list."""
        if run.task == "text":
            return await request_texts(request, settings.limits)
        data = await upload_bytes(request, settings.limits)
        pixels = await run_in_threadpool(decode_image, data, run.image_size, run.crop_fraction, settings.limits)
        return pixels[None], True

    @app.post("/predict", dependencies=[Depends(check_key)])
    async def predict_route(request: Request, top_k: int | None = None) -> dict:
        started = time.perf_counter()
        inputs, single = await request_inputs(request)
        probabilities, timing = await classify(inputs)
        k = max(1, min(top_k or settings.top_k, len(run.classes)))
        tops = [_top(row, run.classes, k) for row in probabilities]
        answers = {"predictions": tops[0]} if single else {"results": [{"predictions": top} for top in tops]}
        return {"model": run.name, **answers, **timing, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    @app.post("/v1/models/{name}:predict", dependencies=[Depends(check_key)])
    async def tf_serving_predict(name: str, request: Request) -> dict:
        check_name(name)
        body = await read_body(request, settings.limits)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(400, f"body is not valid JSON ({error}); send {{\"instances\": [...]}}.") from None
        if run.task == "text":
            inputs = instance_texts(payload, settings.limits)
        else:
            inputs = await run_in_threadpool(decode_instances, payload, run.image_size, run.crop_fraction, settings.limits)
        probabilities, _ = await classify(inputs)
        classes = probabilities.argmax(axis=1)
        return {
            "predictions": [
                {"probabilities": [float(p) for p in row], "classes": int(index), "labels": run.classes[index]}
                for row, index in zip(probabilities, classes)
            ]
        }

    @app.get("/v1/models/{name}")
    async def tf_serving_status(name: str) -> dict:
        check_name(name)
        return {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "model": run.name, "task": run.task}

    @app.get("/metadata")
    async def metadata() -> dict:
        metrics = run.metrics
        summary_keys = ("test_accuracy", "test_macro_f1", "val_accuracy", "strategy", "epochs_phase1", "epochs_phase2")
        return {
            "run_id": run.name,
            "task": run.task,
            "classes": run.classes,
            "backbone": run.config.backbone,
            **_input_contract(run),
            "metrics": {key: metrics.get(key) for key in summary_keys},
            "serving": {**asdict(settings), "api_key": settings.api_key is not None},
        }

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return page_html(run.name, needs_key=settings.api_key is not None, task=run.task)

    return app


def _top(probabilities: np.ndarray, classes: list[str], k: int) -> list[dict]:
    return [{"label": classes[i], "probability": round(float(probabilities[i]), 6)} for i in np.argsort(-probabilities)[:k]]


def _input_contract(run: Run) -> dict:
    """What ``/predict`` takes: image size and crop, or the tokens a text is truncated to."""
    if run.task == "text":
        return {"input": 'JSON {"text": "..."} or {"texts": [...]}', "max_length": run.max_length}
    return {"input_size": [run.image_size, run.image_size, 3], "crop_fraction": run.crop_fraction}


async def _with_timeout(awaitable: Awaitable[T], seconds: float) -> T:

    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise RequestError(504, f"no answer within {seconds:g} s (the server is overloaded); retry later.") from None
