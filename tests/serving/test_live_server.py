"""A real uvicorn on 127.0.0.1: the same promises over a socket, and the web page in headless Chromium."""

import asyncio

import httpx
import pytest

from images import MALFORMED, b64, bomb, png
from live import HAS_CHROMIUM, LiveServer, chromium

KEY = {"X-API-Key": "secret"}


@pytest.fixture(scope="module")
def servers(exported):
    main = LiveServer(exported.path, "--max-body-mb", "0.2", env={"SHOULDERS_API_KEY": "secret"})
    tight = LiveServer(exported.path, "--max-queue", "1", "--max-batch", "1", "--max-wait-ms", "0", "--format", "tflite")
    try:
        yield main.wait_ready(), tight.wait_ready()
    finally:
        main.stop()
        tight.stop()


def good(server) -> None:
    answer = httpx.post(server.url + "/predict", content=png(), headers=KEY, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["label"] == "red"


def test_every_route_answers_over_a_socket(servers, exported):
    main, _ = servers
    good(main)
    upload = httpx.post(main.url + "/predict", files={"file": ("red.png", png(), "image/png")}, headers=KEY)
    assert upload.json()["predictions"][0]["label"] == "red"
    tf_serving = httpx.post(f"{main.url}/v1/models/{exported.name}:predict", json={"instances": [b64(png())]}, headers=KEY)
    assert tf_serving.json()["predictions"][0]["labels"] == "red"
    assert httpx.get(main.url + "/v1/models/default").json()["model_version_status"][0]["state"] == "AVAILABLE"
    assert httpx.get(main.url + "/metadata").json()["classes"] == exported.classes
    assert "<input id=\"file\"" in httpx.get(main.url + "/").text


def test_bad_requests_get_4xx_and_the_server_keeps_serving(servers):
    main, _ = servers
    for name, route, request_kwargs, status in MALFORMED:
        answer = httpx.post(main.url + route, headers=KEY, **request_kwargs)
        assert answer.status_code == status, (name, answer.text)
        good(main)
    for content, status in ((b"\0" * 300_000, 413), (bomb(), 413)):
        assert httpx.post(main.url + "/predict", content=content, headers=KEY).status_code == status
        good(main)
    assert httpx.post(main.url + "/predict", content=png(), headers={"X-API-Key": "wrong"}).status_code == 401
    assert httpx.post(main.url + "/predict", content=png()).status_code == 401
    good(main)


def test_a_full_queue_answers_503_over_a_socket(servers):
    _, tight = servers

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            answers = await asyncio.gather(*(client.post(tight.url + "/predict", content=png()) for _ in range(60)))
            return [answer.status_code for answer in answers]

    statuses = asyncio.run(burst())
    assert 503 in statuses and 200 in statuses and set(statuses) <= {200, 503}, statuses
    answer = httpx.post(tight.url + "/predict", content=png(), timeout=30)
    assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == "red"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CHROMIUM, reason="needs chromium and chromedriver")
def test_the_page_shows_the_predicted_label_in_a_browser(servers, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    main, _ = servers
    image = tmp_path / "red.png"
    image.write_bytes(png())
    driver = chromium(tmp_path / "profile")
    try:
        driver.get(main.url + "/")
        driver.find_element(By.ID, "key").send_keys("secret")
        driver.find_element(By.ID, "file").send_keys(str(image))
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "top").text.strip())
        assert driver.find_element(By.ID, "top").text.startswith("red")
        labels = [element.text for element in driver.find_elements(By.CSS_SELECTOR, "#bars .label")]
        assert sorted(labels) == ["blue", "green", "red"]
    finally:
        driver.quit()


@pytest.mark.slow
def test_the_load_benchmark_runs_without_errors(exported):
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench" / "serve_load.py"
    result = subprocess.run(
        [sys.executable, str(bench), str(exported.path), "--requests", "40", "--clients", "20", "--duration", "60"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "micro-batching:" in result.stdout and "batching off" in result.stdout
