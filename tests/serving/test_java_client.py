"""examples/java/ShouldersClient.java, compiled with javac and run against a live `shoulders serve
--format onnx` on 127.0.0.1: its top-1 for each photo is the Python client's, over both input forms
(base64 bytes and row-format pixels), and a refused request prints the server's error body."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from images import b64
from live import LiveServer

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "examples" / "java" / "ShouldersClient.java"

pytestmark = pytest.mark.skipif(not (shutil.which("javac") and shutil.which("java")),
                                reason="no JDK: .ci/run installs openjdk-17-jdk-headless")


@pytest.fixture(scope="module")
def onnx_server(exported):
    server = LiveServer(exported.path, "--format", "onnx")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def _python_top1(server, files: list[Path]) -> list[str]:
    """The Python client: httpx, TF Serving's row format with base64 bytes."""
    body = {"instances": [b64(file.read_bytes()) for file in files]}
    answer = httpx.post(f"{server.url}/v1/models/default:predict", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return [prediction["labels"] for prediction in answer.json()["predictions"]]


def test_the_java_client_answers_like_the_python_client(onnx_server, exported, tmp_path):
    started = time.perf_counter()
    compiled = subprocess.run(["javac", "-d", str(tmp_path), str(CLIENT)], capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stderr
    data = Path(exported.config.data)
    files = sorted(data.glob("*/*.png"))[::6]  # every colour, a few photos each
    expected = _python_top1(onnx_server, files)
    assert expected == [file.parent.name for file in files]
    size = str(exported.image_size)
    for form in ([], ["--pixels", size, size]):
        ran = subprocess.run(["java", "-cp", str(tmp_path), "ShouldersClient", onnx_server.url, *map(str, files), *form],
                             capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        lines = [line.split("\t") for line in ran.stdout.splitlines()]
        assert lines[0] == ["status", "AVAILABLE"]
        assert [Path(name) for name, _, _ in lines[1:]] == files
        assert [label for _, label, _ in lines[1:]] == expected, form
        assert all(0.0 < float(probability) <= 1.0 for _, _, probability in lines[1:])
    refused = subprocess.run(["java", "-cp", str(tmp_path), "ShouldersClient", onnx_server.url, str(files[0]), "--model", "nope"],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    status, code, message = refused.stdout.strip().split("\t")
    assert (status, code) == ("error", "404") and "error" in json.loads(message.split(": ", 1)[1])
    print(f"java client: compiled and ran 3 times in {time.perf_counter() - started:.1f} s")
