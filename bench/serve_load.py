"""Load on `shoulders serve`: N concurrent clients on loopback, micro-batching on vs off, same run, same image.

    .venv/bin/python bench/serve_load.py RUN [--requests 200] [--clients 200] [--duration 120]

For each mode it starts a real server process (127.0.0.1, a free port), warms it up, sends
``--requests`` POST /predict requests from ``--clients`` concurrent clients (stopping early after
``--duration`` seconds), and prints throughput, p50/p99 latency, errors and the mean batch size the
server reported; then the on/off ratios. Client and server share the machine: run it otherwise idle.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sample_image(run: Path, image: Path | None) -> bytes:
    """The given image, else a test image of the run, else a generated 500x375 photo-sized JPEG."""
    if image is not None:
        return image.read_bytes()
    import json

    splits, config = (json.loads((run / name).read_text()) for name in ("splits.json", "config.json"))
    if splits.get("test") and Path(config["data"], splits["test"][0]).is_file():
        return Path(config["data"], splits["test"][0]).read_bytes()
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def start_server(run: Path, port: int, options: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "shoulders.cli.main", "serve", str(run), "--port", str(port), *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise TimeoutError("server did not start within 180 s")


async def drive(url: str, body: bytes, requests: int, clients: int, duration: float) -> dict:
    latencies: list[float] = []
    batches: list[int] = []
    errors: dict[str, int] = {}
    next_request = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        for _ in range(3):  # warm-up: first requests pay for connection set-up and tracing
            await client.post(url, content=body)

        async def worker() -> None:
            nonlocal next_request
            while next_request < requests and time.perf_counter() < deadline:
                next_request += 1
                started = time.perf_counter()
                try:
                    answer = await client.post(url, content=body)
                except httpx.HTTPError as error:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                    continue
                if answer.status_code != 200:
                    errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                batches.append(answer.json()["batch_size"])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "ok": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "throughput": len(latencies) / elapsed,
        "p50": float(np.percentile(latencies, 50)) if latencies else float("nan"),
        "p99": float(np.percentile(latencies, 99)) if latencies else float("nan"),
        "mean_batch": float(np.mean(batches)) if batches else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=120.0, help="stop sending after this many seconds")
    parser.add_argument("--format", default="keras", choices=("keras", "savedmodel", "tflite"))
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--image", type=Path, default=None)
    args = parser.parse_args()
    body = sample_image(args.run, args.image)
    modes = {
        "batching on": ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)],
        "batching off": ["--max-batch", "1", "--max-wait-ms", "0"],
    }
    results = {}
    for mode, options in modes.items():
        port = free_port()
        server = start_server(args.run, port, ["--format", args.format, "--max-queue", str(max(256, args.clients)), *options])
        try:
            results[mode] = asyncio.run(drive(f"http://127.0.0.1:{port}/predict", body, args.requests, args.clients, args.duration))
        finally:
            server.terminate()
            server.wait(30)
    print(f"{args.run.name} ({args.format}), {args.requests} requests from {args.clients} concurrent clients, {os.cpu_count()} CPUs")
    print(f"{'mode':<14}{'ok':>6}{'errors':>10}{'req/s':>9}{'p50 ms':>10}{'p99 ms':>10}{'mean batch':>12}")
    for mode, r in results.items():
        print(f"{mode:<14}{r['ok']:>6}{sum(r['errors'].values()):>10}{r['throughput']:>9.1f}{r['p50']:>10.0f}{r['p99']:>10.0f}{r['mean_batch']:>12.1f}")
        if r["errors"]:
            print(f"  errors: {r['errors']}")
    on, off = results["batching on"], results["batching off"]
    print(f"micro-batching: {on['throughput'] / off['throughput']:.2f}x throughput, p50 {off['p50'] / on['p50']:.2f}x lower, p99 {off['p99'] / on['p99']:.2f}x lower")
    if any(r["errors"] for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
