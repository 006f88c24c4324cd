"""The repository's Dockerfile, really built and run: podman (with runc) builds it on a Debian base made here
with debootstrap and imported with `podman import` (no image registry is reachable from these machines),
then serves the tiny run from a read-only mount as a non-root user; /healthz, the health check, the API key
and one prediction are checked from outside the container, against the same run predicting in-process."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from images import b64, png
from processes import free_port

ROOT = Path(__file__).resolve().parents[2]
MIRROR = "http://deb.debian.org/debian"
TOOLS = ("podman", "runc", "debootstrap")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(map(shutil.which, TOOLS)) or os.geteuid() != 0,
                       reason="needs podman, runc and debootstrap as root: .ci/run installs them from Debian's packages"),
]


def _host_ca_bundle() -> Path | None:
    """The CA bundle this machine's pip trusts (an intercepting proxy's own CA may be in it)."""
    for candidate in (os.environ.get("PIP_CERT"), ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _podman(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", "--runtime", "runc", *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"podman {' '.join(args)}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def _debian_base(root: Path, env: dict, name: str) -> None:
    """A minimal Debian bookworm with python3 and venv, imported as the image ``name``; pip inside trusts the
    host's CA bundle (copied in, named by PIP_CERT)."""
    rootfs = root / "rootfs"
    done = subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm", str(rootfs), MIRROR],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    changes = []
    bundle = _host_ca_bundle()
    if bundle:
        shutil.copyfile(bundle, rootfs / "etc/ssl/certs/host-ca.crt")
        changes = ["--change", "ENV PIP_CERT=/etc/ssl/certs/host-ca.crt"]
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(["podman", "import", *changes, "-", name], stdin=tar.stdout, env=env,
                              capture_output=True, text=True, timeout=300)
    tar.wait()
    assert imported.returncode == 0, imported.stderr
    shutil.rmtree(rootfs)


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory):
    """podman's own settings for this test: no default ulimits (the sandbox refuses to raise them)."""
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


@pytest.fixture(scope="module")
def image(podman_env, tmp_path_factory):
    """The Dockerfile built on the debootstrapped base; both images are removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    base, served = f"localhost/shoulders-test-base:{tag}", f"localhost/shoulders-serve:{tag}"
    started = time.perf_counter()
    _debian_base(tmp_path_factory.mktemp("debian"), podman_env, base)
    based = time.perf_counter()
    try:
        _podman(podman_env, "build", "--pull=never", "--format", "docker", "--network", "host",
                "--build-arg", f"BASE={base}", "-t", served, str(ROOT), timeout=1500)
        print(f"debian base {based - started:.0f} s, image build {time.perf_counter() - based:.0f} s")
        yield served
    finally:
        subprocess.run(["podman", "rmi", "-f", served, base], env=podman_env, capture_output=True, timeout=300)


@pytest.fixture
def container(image, exported, podman_env):
    """The image serving the tiny run on the host's network, with an API key."""
    port, name = free_port(), f"shoulders-test-{uuid.uuid4().hex[:8]}"
    _podman(podman_env, "run", "-d", "--name", name, "--network", "host", "--health-interval", "disable",
            "-v", f"{exported.path}:/srv/run:ro", "-e", f"SHOULDERS_PORT={port}", "-e", "SHOULDERS_API_KEY=k3y", image)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, name, podman_env)
        yield name, url
    finally:
        subprocess.run(["podman", "rm", "-f", name], env=podman_env, capture_output=True, timeout=120)


def _wait_healthy(url: str, name: str, env: dict, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    logs = subprocess.run(["podman", "logs", name], env=env, capture_output=True, text=True).stdout
    raise TimeoutError(f"the container did not answer /healthz in {seconds} s:\n{logs[-4000:]}")


def test_the_image_serves_a_mounted_run_as_a_non_root_user(container, exported, podman_env):
    name, url = container
    assert _podman(podman_env, "exec", name, "id", "-u").stdout.strip() == "10001"
    _podman(podman_env, "healthcheck", "run", name)  # the Dockerfile's HEALTHCHECK, run by podman
    health = _podman(podman_env, "inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
    assert health == "healthy"
    assert httpx.get(url + "/healthz", timeout=10).json()["task"] == "image"

    body = {"instances": [b64(png((30, 200, 30))), b64(png((30, 30, 200)))]}
    assert httpx.post(f"{url}/v1/models/default:predict", json=body, timeout=60).status_code == 401
    answer = httpx.post(f"{url}/v1/models/default:predict", json=body, headers={"X-API-Key": "k3y"}, timeout=60)
    assert answer.status_code == 200, answer.text
    served = answer.json()["predictions"]
    local = exported.predict([png((30, 200, 30)), png((30, 30, 200))])
    assert [prediction["labels"] for prediction in served] == [exported.classes[i] for i in local.argmax(axis=1)]
    assert [prediction["labels"] for prediction in served] == ["green", "blue"]
    served_probabilities = [prediction["probabilities"] for prediction in served]
    assert abs(local - served_probabilities).max() < 1e-4
