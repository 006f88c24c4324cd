"""A real `shoulders serve` of a text run (its TFLite export) on 127.0.0.1: JSON over a socket, and the
page's text box in headless Chromium."""

import httpx
import numpy as np
import pytest
from images import png
from live import HAS_CHROMIUM, LiveServer, chromium


@pytest.fixture(scope="module")
def text_server(exported_text):
    server = LiveServer(exported_text.path, "--format", "tflite", "--max-texts", "3")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def recorded_texts(run) -> list[str]:
    return [entry["text"] for entry in run.metrics["test_predictions"]]


def test_a_text_run_answers_over_a_socket(text_server, exported_text):
    texts = recorded_texts(exported_text)[:3]
    expected = exported_text.predict(texts)
    single = httpx.post(text_server.url + "/predict", json={"text": texts[0]}, timeout=30)
    assert single.status_code == 200, single.text
    assert single.json()["predictions"][0]["label"] == exported_text.classes[expected[0].argmax()]
    listed = httpx.post(text_server.url + "/predict?top_k=1", json={"texts": texts}, timeout=30).json()["results"]
    assert [r["predictions"][0]["label"] for r in listed] == [exported_text.classes[i] for i in expected.argmax(1)]
    assert np.allclose([r["predictions"][0]["probability"] for r in listed], expected.max(1), atol=1e-4)
    assert httpx.post(text_server.url + "/predict", json={"texts": texts + texts[:1]}).status_code == 413  # --max-texts 3
    assert httpx.post(text_server.url + "/predict", content=png()).status_code == 415
    assert httpx.get(text_server.url + "/healthz").json()["task"] == "text"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CHROMIUM, reason="needs chromium and chromedriver")
def test_the_text_page_shows_the_predicted_label_in_a_browser(text_server, exported_text, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    text = recorded_texts(exported_text)[0]
    expected = exported_text.classes[exported_text.predict([text])[0].argmax()]
    driver = chromium(tmp_path / "profile")
    try:
        driver.get(text_server.url + "/")
        driver.find_element(By.ID, "text").send_keys(text)
        driver.find_element(By.ID, "classify").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "top").text.strip())
        assert driver.find_element(By.ID, "top").text.startswith(expected)
        labels = [element.text for element in driver.find_elements(By.CSS_SELECTOR, "#bars .label")]
        assert sorted(labels) == sorted(exported_text.classes)
    finally:
        driver.quit()
