"""The HTTP server: FastAPI routes over a micro-batched model; it stays up whatever clients send.

Routes: ``POST /predict`` (an image run: multipart or raw image; a text run: JSON ``{"text": "..."}`` or
``{"texts": [...]}``), TF Serving's ``POST /v1/models/{name}:predict`` and ``GET /v1/models/{name}`` (name:
the run folder's name, or ``default``), ``GET /healthz``, ``GET /metadata``, and ``GET /`` (a page to try an
image or a text). An API key, when set, guards the predict routes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from shoulders.config import check_number
from shoulders.runs.reader import Run
from shoulders.serving.batching import MicroBatcher
from shoulders.serving.errors import QueueFullError, RequestError
from shoulders.serving.inputs import Limits, decode_image, decode_instances, parse_json, read_body, upload_bytes
from shoulders.serving.page import page_html
from shoulders.serving.predictors import Predict, load_predictor
from shoulders.serving.texts import instance_texts, request_texts

T = TypeVar("T")
log = logging.getLogger("shoulders.serving")


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

    def __post_init__(self) -> None:
        for name, option, low in (("max_batch", "--max-batch", 1), ("max_queue", "--max-queue", 1), ("top_k", "top_k", 1)):
            check_number(option, getattr(self, name), low=low, whole=True)
        check_number("--max-wait-ms", self.max_wait_ms, low=0, meaning="milliseconds to wait for more requests")
        check_number("--timeout", self.timeout_s, low=0, open_bound="low", meaning="seconds before a waiting request gets 504")


def create_app(run: Run, settings: ServeSettings | None = None, predictor: Predict | None = None) -> FastAPI:
    """The app for ``run``; ``predictor`` replaces the model (tests use a slow one to fill the queue)."""
    settings = settings or ServeSettings()
    served = ServedRun(run, settings, predictor or load_predictor(run, settings.format, settings.quantize))
    app = FastAPI(title=f"shoulders: {run.name}", lifespan=served.lifespan, docs_url=None, redoc_url=None)
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    guarded = [Depends(served.check_key)]
    app.add_api_route("/predict", served.predict_route, methods=["POST"], dependencies=guarded)
    app.add_api_route("/v1/models/{name}:predict", served.tf_serving_predict, methods=["POST"], dependencies=guarded)
    app.add_api_route("/v1/models/{name}", served.tf_serving_status, methods=["GET"])
    app.add_api_route("/healthz", served.healthz, methods=["GET"])
    app.add_api_route("/metadata", served.metadata, methods=["GET"])
    app.add_api_route("/", served.page, methods=["GET"], response_class=HTMLResponse)
    return app


class ServedRun:
    """One served run: its settings and micro-batched model, with one method per route (`create_app` wires them)."""

    def __init__(self, run: Run, settings: ServeSettings, predict: Predict) -> None:
        self.run, self.settings = run, settings
        self.batcher = MicroBatcher(predict, settings.max_batch, settings.max_wait_ms, settings.max_queue)
        self.names = {run.name, "default"}

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        """The batcher's worker runs while the app does."""
        await self.batcher.start()
        yield
        await self.batcher.stop()

    def check_key(self, request: Request) -> None:
        """401 unless the request carries the API key (when one is set), in X-API-Key or as a Bearer token."""
        if self.settings.api_key is None:
            return
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given.encode(), self.settings.api_key.encode()):
            raise RequestError(401, "missing or wrong API key: send it in the X-API-Key header (or Authorization: Bearer KEY).")

    def check_name(self, name: str) -> None:
        """404 unless ``name`` is this run's (TF Serving clients also say ``default``)."""
        if name not in self.names:
            raise RequestError(404, f"no model named {name!r}; this server serves {self.run.name!r} (also answers to 'default').")

    async def classify(self, inputs: np.ndarray) -> tuple[np.ndarray, dict]:
        """Probabilities for ``inputs`` through the batcher, and how long it took (503 when full, 504 when late)."""
        started = time.perf_counter()
        try:
            result = await _with_timeout(self.batcher.submit(inputs), self.settings.timeout_s)
        except QueueFullError as error:
            raise RequestError(503, str(error)) from None
        timing = {"latency_ms": round((time.perf_counter() - started) * 1000, 2), "model_ms": round(result.model_ms, 2), "batch_size": result.batch_size}
        return result.probabilities, timing

    async def request_inputs(self, request: Request) -> tuple[np.ndarray, bool]:
        """The batch a ``/predict`` body holds, and whether it is one input (one answer) or a list."""
        limits = self.settings.limits
        if self.run.task == "text":
            return await request_texts(request, limits)
        data = await upload_bytes(request, limits)
        pixels = await run_in_threadpool(decode_image, data, self.run.image_size, self.run.crop_fraction, limits)
        return pixels[None], True

    async def predict_route(self, request: Request, top_k: int | None = None) -> dict:
        """``POST /predict``: the top ``top_k`` labels with probabilities, per input, and the timings."""
        started = time.perf_counter()
        inputs, single = await self.request_inputs(request)
        probabilities, timing = await self.classify(inputs)
        k = max(1, min(top_k or self.settings.top_k, len(self.run.classes)))
        tops = [_top(row, self.run.classes, k) for row in probabilities]
        answers = {"predictions": tops[0]} if single else {"results": [{"predictions": top} for top in tops]}
        return {"model": self.run.name, **answers, **timing, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    async def tf_serving_predict(self, name: str, request: Request) -> dict:
        """``POST /v1/models/{name}:predict``: TF Serving's row format in, its predictions out."""
        self.check_name(name)
        payload = _json_payload(await read_body(request, self.settings.limits))
        if self.run.task == "text":
            inputs = instance_texts(payload, self.settings.limits)
        else:
            inputs = await run_in_threadpool(decode_instances, payload, self.run.image_size, self.run.crop_fraction, self.settings.limits)
        probabilities, _ = await self.classify(inputs)
        classes = probabilities.argmax(axis=1)
        return {
            "predictions": [
                {"probabilities": [float(p) for p in row], "classes": int(index), "labels": self.run.classes[index]}
                for row, index in zip(probabilities, classes)
            ]
        }

    async def tf_serving_status(self, name: str) -> dict:
        """``GET /v1/models/{name}``: TF Serving's model status (always available once the app is up)."""
        self.check_name(name)
        return {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}

    async def healthz(self) -> dict:
        """``GET /healthz``: up, with the run and its task (a load balancer's probe; never guarded by the key)."""
        return {"status": "ok", "model": self.run.name, "task": self.run.task}

    async def metadata(self) -> dict:
        """``GET /metadata``: what the run is, what it takes, its headline metrics and the serving settings
        (whether a key is set, never the key)."""
        run, settings = self.run, self.settings
        summary_keys = ("test_accuracy", "test_macro_f1", "val_accuracy", "strategy", "epochs_phase1", "epochs_phase2")
        return {
            "run_id": run.name,
            "task": run.task,
            "classes": run.classes,
            "backbone": run.config.backbone,
            **_input_contract(run),
            "metrics": {key: run.metrics.get(key) for key in summary_keys},
            "serving": {**asdict(settings), "api_key": settings.api_key is not None},
        }

    async def page(self) -> str:
        """``GET /``: the self-contained page to try the model (it asks for the key when one is set)."""
        return page_html(self.run.name, needs_key=self.settings.api_key is not None, task=self.run.task)


async def _request_error(_: Request, error: RequestError) -> JSONResponse:
    """Every client error as ``{"error": message}`` with its status: the message says what to send instead."""
    return JSONResponse({"error": error.message}, status_code=error.status)


def _json_payload(body: bytes) -> object:
    return parse_json(body, 'send {"instances": [...]}')


async def _client_gone(request: Request, _: ClientDisconnect) -> Response:
    """A client that hangs up before its body ends: one log line, not a traceback (no one reads the answer)."""
    client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
    log.warning("%s went away before sending its whole request to %s %s", client, request.method, request.url.path)
    return Response(status_code=400)


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
