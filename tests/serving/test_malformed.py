"""Malformed input of any kind is a 4xx with a JSON error body, and a client that hangs up mid-body is one
log line: checked on the app itself, with a stand-in model (no training needed)."""

import asyncio
import logging
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # Starlette's TestClient warns about httpx at import; it still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from shoulders.config import RunConfig
from shoulders.runs.reader import Run
from shoulders.serving import ServeSettings, create_app

DEEP = b"[" * 100_000 + b"]" * 100_000  # past Python's recursion limit when parsed


def _run(tmp_path, task: str) -> Run:
    config = RunConfig(data=str(tmp_path / ("t.csv" if task == "text" else "photos")), task=task)
    return Run(tmp_path / "run", config, ["a", "b"], {}, [], None if task == "text" else 32, None if task == "text" else 1.0, 32)


def _uniform(inputs) -> np.ndarray:
    for item in inputs:
        if isinstance(item, str):
            item.encode("utf-8")  # what a tokenizer does first: a lone surrogate cannot be encoded
    return np.full((len(inputs), 2), 0.5)


@pytest.fixture(params=["image", "text"])
def served(request, tmp_path):
    app = create_app(_run(tmp_path, request.param), ServeSettings(), predictor=_uniform)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield request.param, app, client


def test_deeply_nested_json_is_a_400_on_both_predict_routes(served):
    task, _, client = served
    routes = ["/v1/models/default:predict"] + (["/predict"] if task == "text" else [])
    for route in routes:
        answer = client.post(route, content=DEEP, headers={"content-type": "application/json"})
        assert answer.status_code == 400, (route, answer.text)
        assert "nests JSON too deeply" in answer.json()["error"]


def test_a_text_that_is_not_valid_unicode_is_a_422(tmp_path):
    app = create_app(_run(tmp_path, "text"), ServeSettings(), predictor=_uniform)
    with TestClient(app, raise_server_exceptions=False) as client:
        _check_unicode(client)


def _check_unicode(client) -> None:
    body = b'{"text": "good \\ud800 film"}'  # valid JSON, decoding to a lone surrogate
    for route, payload in (("/predict", body), ("/v1/models/default:predict", b'{"instances": ["good \\udfff"]}')):
        answer = client.post(route, content=payload, headers={"content-type": "application/json"})
        assert answer.status_code == 422, (route, answer.text)
        assert "not valid Unicode" in answer.json()["error"]
    assert client.post("/predict", json={"text": "good film"}).status_code == 200


def _send_half_a_body(app, path: str) -> list[dict]:
    """An ASGI request whose client disconnects after the first chunk of a 1000-byte body."""
    events = iter([
        {"type": "http.request", "body": b'{"instances": [', "more_body": True},
        {"type": "http.disconnect"},
    ])
    sent: list[dict] = []

    async def receive():
        return next(events, {"type": "http.disconnect"})

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_client_that_goes_away_mid_body_is_one_log_line(served, caplog):
    task, app, _ = served
    path = "/predict" if task == "text" else "/v1/models/default:predict"
    with caplog.at_level(logging.WARNING):
        _send_half_a_body(app, path)  # raised out of the app (a traceback in uvicorn's log) before the fix
    lines = [record for record in caplog.records if "went away" in record.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "127.0.0.1:5555 went away before sending its whole request to POST " + path == lines[0].getMessage()
