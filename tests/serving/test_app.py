"""The server in process: every route, every kind of bad input, limits; it keeps serving after each."""

import asyncio
import time

import warnings

import httpx
import numpy as np
import pytest

with warnings.catch_warnings():  # Starlette's TestClient warns about httpx at import; it still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from images import MALFORMED, b64, bomb, pixels, png
from shoulders.serving import Limits, MicroBatcher, ServeSettings, create_app, load_predictor

KEY = {"X-API-Key": "secret"}


@pytest.fixture(scope="module")
def client(exported):
    settings = ServeSettings(api_key="secret", limits=Limits(max_body_bytes=200_000, max_pixels=4_000_000))
    with TestClient(create_app(exported, settings)) as test_client:
        yield test_client


def assert_still_serving(client) -> None:
    answer = client.post("/predict", content=png(), headers=KEY)
    assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == "red"


def test_predict_takes_multipart_or_raw_bytes(client):
    upload = client.post("/predict?top_k=2", files={"file": ("red.png", png(), "image/png")}, headers=KEY)
    raw = client.post("/predict", content=png((30, 40, 200)), headers=KEY)
    assert upload.status_code == 200, upload.text
    assert [p["label"] for p in upload.json()["predictions"]][:1] == ["red"] and len(upload.json()["predictions"]) == 2
    assert upload.json()["latency_ms"] > 0 and upload.json()["batch_size"] >= 1
    assert raw.json()["predictions"][0]["label"] == "blue"


def test_tf_serving_routes_answer_by_run_name_and_default(client, exported):
    green = pixels((30, 180, 40), (32, 32)).tolist()
    for name in (exported.name, "default"):
        answer = client.post(f"/v1/models/{name}:predict", json={"instances": [b64(png()), green]}, headers=KEY)
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert [p["labels"] for p in predictions] == ["red", "green"]
        assert abs(sum(predictions[0]["probabilities"]) - 1) < 1e-4 and predictions[0]["classes"] == exported.classes.index("red")
        assert client.get(f"/v1/models/{name}").json()["model_version_status"][0]["state"] == "AVAILABLE"
    named = client.post("/v1/models/default:predict", json={"instances": [{"images": b64(png())}]}, headers=KEY)
    assert named.json()["predictions"][0]["labels"] == "red"


def test_health_metadata_and_page(client, exported):
    assert client.get("/healthz").json()["status"] == "ok"
    metadata = client.get("/metadata").json()
    assert metadata["classes"] == exported.classes and metadata["input_size"] == [32, 32, 3]
    assert metadata["run_id"] == exported.name and metadata["backbone"] == "efficientnet_lite0"
    assert metadata["metrics"]["test_accuracy"] == exported.metrics["test_accuracy"]
    assert metadata["serving"]["api_key"] is True  # says a key is set, never the key
    page = client.get("/")
    assert page.status_code == 200 and 'type="file"' in page.text and "http" not in page.text.split("<script>")[1]


@pytest.mark.parametrize("name,route,request_kwargs,status", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_input_gets_a_4xx_with_a_message(client, name, route, request_kwargs, status):
    answer = client.post(route, headers=KEY, **request_kwargs)
    assert answer.status_code == status, answer.text
    assert len(answer.json()["error"]) > 10
    assert_still_serving(client)


def test_text_sent_to_an_image_run_is_refused_with_what_it_takes(client):
    answer = client.post("/predict", json={"text": "a fine film"}, headers=KEY)
    assert answer.status_code == 415 and "this run classifies images: send an image" in answer.json()["error"]
    instances = client.post("/v1/models/default:predict", json={"instances": ["a fine film"]}, headers=KEY)
    assert instances.status_code == 400 and "this run classifies images" in instances.json()["error"]
    assert client.get("/healthz").json()["task"] == "image" and client.get("/metadata").json()["task"] == "image"


def test_oversize_body_and_decompression_bomb_get_413(client):
    big = client.post("/predict", content=b"\xff" * 300_000, headers=KEY)
    assert big.status_code == 413 and "limit" in big.json()["error"]
    bombed = client.post("/predict", content=bomb(), headers=KEY)
    assert bombed.status_code == 413 and "pixels" in bombed.json()["error"]
    too_many = client.post("/v1/models/default:predict", json={"instances": [b64(png())] * 65}, headers=KEY)
    assert too_many.status_code == 413
    assert_still_serving(client)


def test_api_key_is_checked_on_every_predict_route(client):
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
        assert client.post("/predict", content=png(), headers=headers).status_code == 401
        assert client.post("/v1/models/default:predict", json={"instances": [b64(png())]}, headers=headers).status_code == 401
    assert client.post("/predict", content=png(), headers={"Authorization": "Bearer secret"}).status_code == 200
    assert client.get("/healthz").status_code == 200  # not a predict route


@pytest.mark.parametrize("format", ["savedmodel", "tflite", "onnx"])
def test_exported_formats_serve_the_same_answers(exported, format):
    keras_predict = load_predictor(exported, "keras")
    images = np.stack([pixels(colour, (32, 32)) for colour in ((200, 30, 30), (30, 180, 40), (30, 40, 200))])
    predict = load_predictor(exported, format)
    np.testing.assert_array_equal(predict(images).argmax(1), keras_predict(images).argmax(1))
    np.testing.assert_array_equal(predict(images).argmax(1), [exported.classes.index(c) for c in ('red', 'green', 'blue')])


async def _lifespan_requests(app, requests: list[dict]) -> list[httpx.Response]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.post("/predict", content=png(), **request) for request in requests))
            answers.append(await client.post("/predict", content=png(), timeout=30))
            return answers


def _slow(exported, seconds: float):
    predict = load_predictor(exported, "keras")

    def slow(pixels):
        time.sleep(seconds)
        return predict(pixels)

    return slow


def test_a_full_queue_answers_503_and_recovers(exported):
    app = create_app(exported, ServeSettings(max_batch=1, max_wait_ms=0, max_queue=1), predictor=_slow(exported, 0.3))
    answers = asyncio.run(_lifespan_requests(app, [{}] * 6))
    statuses = [answer.status_code for answer in answers[:-1]]
    assert 503 in statuses and 200 in statuses and set(statuses) <= {200, 503}
    assert "busy" in next(a for a in answers if a.status_code == 503).json()["error"]
    assert answers[-1].status_code == 200


def test_a_request_past_its_timeout_gets_504(exported):
    app = create_app(exported, ServeSettings(timeout_s=0.2), predictor=_slow(exported, 0.6))
    answers = asyncio.run(_lifespan_requests(app, [{}]))
    assert answers[0].status_code == 504 and "no answer within 0.2 s" in answers[0].json()["error"]
    assert answers[-1].status_code == 504  # still answering, not hung


def test_concurrent_requests_share_one_forward_pass(exported):
    app = create_app(exported, ServeSettings(max_batch=8, max_wait_ms=50), predictor=_slow(exported, 0.05))
    answers = asyncio.run(_lifespan_requests(app, [{}] * 8))
    assert all(answer.status_code == 200 for answer in answers)
    assert max(answer.json()["batch_size"] for answer in answers) > 1


def test_micro_batcher_rejects_bad_settings():
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        MicroBatcher(lambda x: x, max_batch=0)
