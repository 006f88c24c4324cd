"""The server for a text run, in process: JSON texts in, the run's own answers out, every bad input a 4xx."""

import asyncio
import time
import warnings

import httpx
import numpy as np
import pytest

with warnings.catch_warnings():  # Starlette's TestClient warns about httpx at import; it still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from images import png

from shoulders.serving import Limits, ServeSettings, create_app, load_predictor

LIMITS = Limits(max_texts=4, max_text_chars=200)


@pytest.fixture(scope="module")
def client(exported_text):
    with TestClient(create_app(exported_text, ServeSettings(limits=LIMITS))) as test_client:
        yield test_client


def recorded_texts(run) -> list[str]:
    return [entry["text"] for entry in run.metrics["test_predictions"]]


def probabilities(predictions: list[dict], classes: list[str]) -> list[float]:
    """A response's top-k list back to one probability per class, in the run's class order."""
    by_label = {p["label"]: p["probability"] for p in predictions}
    return [by_label[name] for name in classes]


def assert_still_serving(client, run) -> None:
    text = recorded_texts(run)[0]
    answer = client.post("/predict", json={"text": text})
    assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == run.classify([text], 1)[0][0]["label"]


def test_one_text_gets_one_answer_equal_to_run_predict(client, exported_text):
    text = recorded_texts(exported_text)[0]
    answer = client.post("/predict", json={"text": text})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == exported_text.name and body["batch_size"] >= 1 and body["latency_ms"] > 0
    assert [p["probability"] for p in body["predictions"]] == sorted((p["probability"] for p in body["predictions"]), reverse=True)
    np.testing.assert_allclose(probabilities(body["predictions"], exported_text.classes), exported_text.predict([text])[0], atol=1e-5)


@pytest.mark.parametrize("key", ["text", "texts"])
def test_a_list_of_texts_gets_a_list_of_answers(client, exported_text, key):
    texts = recorded_texts(exported_text)[:4]
    answer = client.post("/predict", json={key: texts})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == len(texts) and "predictions" not in answer.json()
    expected = exported_text.predict(texts)
    for result, row in zip(results, expected):
        np.testing.assert_allclose(probabilities(result["predictions"], exported_text.classes), row, atol=1e-5)
    top = client.post("/predict?top_k=1", json={key: texts}).json()["results"]
    assert [r["predictions"][0]["label"] for r in top] == [exported_text.classes[i] for i in expected.argmax(1)]
    assert all(len(r["predictions"]) == 1 for r in top)


def test_limits_on_texts_per_request_and_characters_per_text(client, exported_text):
    too_many = client.post("/predict", json={"texts": ["a fine film"] * 5})
    assert too_many.status_code == 413 and "5 texts is over the limit of 4" in too_many.json()["error"]
    too_long = client.post("/predict", json={"texts": ["fine", "x" * 201]})
    assert too_long.status_code == 413 and "text 1: 201 characters is over the limit of 200" in too_long.json()["error"]
    assert client.post("/predict", json={"text": "x" * 200}).status_code == 200  # the limit itself is allowed
    assert_still_serving(client, exported_text)


BAD_TEXTS = [
    ("empty text", {"json": {"text": ""}}, 422, "empty"),
    ("whitespace only", {"json": {"text": "  \n "}}, 422, "empty"),
    ("a number", {"json": {"text": 42}}, 422, "must be a string or a list of strings"),
    ("null in a list", {"json": {"texts": ["fine", None]}}, 422, "text 1: expected a string"),
    ("empty list", {"json": {"texts": []}}, 422, "empty"),
    ("texts as one string", {"json": {"texts": "fine"}}, 422, "must be a list of strings"),
    ("no text key", {"json": {"words": "fine"}}, 400, '"text" or "texts"'),
    ("both keys", {"json": {"text": "a", "texts": ["b"]}}, 400, "not both"),
    ("a JSON list", {"json": ["fine"]}, 400, '"text" or "texts"'),
    ("invalid JSON", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
    ("empty body", {"content": b""}, 400, "not valid JSON"),
]


@pytest.mark.parametrize("name,request_kwargs,status,says", BAD_TEXTS, ids=[case[0] for case in BAD_TEXTS])
def test_bad_texts_get_a_4xx_with_a_message(client, exported_text, name, request_kwargs, status, says):
    answer = client.post("/predict", **request_kwargs)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]
    assert_still_serving(client, exported_text)


@pytest.mark.parametrize(
    "request_kwargs",
    [{"content": png()}, {"files": {"file": ("red.png", png(), "image/png")}}, {"content": png(), "headers": {"content-type": "image/png"}}],
    ids=["raw image", "multipart image", "image content type"],
)
def test_an_image_sent_to_a_text_run_is_refused_with_what_it_takes(client, exported_text, request_kwargs):
    answer = client.post("/predict", **request_kwargs)
    assert answer.status_code == 415, answer.text
    assert 'this run classifies texts: send JSON {"text": "..."}' in answer.json()["error"]
    assert_still_serving(client, exported_text)


def test_tf_serving_route_takes_string_instances(client, exported_text):
    texts = recorded_texts(exported_text)[:2]
    for instances in (texts, [{"text": text} for text in texts]):
        answer = client.post(f"/v1/models/{exported_text.name}:predict", json={"instances": instances})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        np.testing.assert_allclose([p["probabilities"] for p in predictions], exported_text.predict(texts), atol=1e-5)
        assert [p["labels"] for p in predictions] == [exported_text.classes[p["classes"]] for p in predictions]
    bad = client.post("/v1/models/default:predict", json={"instances": [[1, 2, 3]]})
    assert bad.status_code == 422 and "expected a string" in bad.json()["error"]


def test_health_metadata_and_page_say_it_is_a_text_run(client, exported_text):
    assert client.get("/healthz").json() == {"status": "ok", "model": exported_text.name, "task": "text"}
    metadata = client.get("/metadata").json()
    assert metadata["task"] == "text" and metadata["max_length"] == exported_text.max_length and "input_size" not in metadata
    assert metadata["classes"] == exported_text.classes and metadata["backbone"] == "minilm_l6"
    assert metadata["serving"]["limits"]["max_texts"] == 4
    page = client.get("/")
    assert page.status_code == 200 and "<textarea" in page.text and 'type="file"' not in page.text
    assert "http" not in page.text.split("<script>")[1]  # self-contained: nothing fetched from elsewhere


@pytest.mark.parametrize("format", ["savedmodel", "tflite"])
def test_exported_formats_serve_the_run_answers(exported_text, format):
    texts = np.array(recorded_texts(exported_text), dtype=object)
    expected = exported_text.predict(list(texts))
    np.testing.assert_allclose(load_predictor(exported_text, format)(texts), expected, atol=1e-5)
    np.testing.assert_allclose(load_predictor(exported_text, "keras")(texts), expected, atol=1e-5)


def test_concurrent_texts_share_one_forward_pass_and_get_their_own_answers(exported_text):
    predict = load_predictor(exported_text, "keras")

    def slow(texts):
        time.sleep(0.05)
        return predict(texts)

    texts = recorded_texts(exported_text)
    app = create_app(exported_text, ServeSettings(max_batch=8, max_wait_ms=50), predictor=slow)

    async def requests() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await asyncio.gather(*(http.post("/predict", json={"text": text}) for text in texts))

    answers = asyncio.run(requests())
    assert all(answer.status_code == 200 for answer in answers)
    assert max(answer.json()["batch_size"] for answer in answers) > 1
    expected = exported_text.predict(texts)
    for answer, row in zip(answers, expected):
        np.testing.assert_allclose(probabilities(answer.json()["predictions"], exported_text.classes), row, atol=1e-5)
