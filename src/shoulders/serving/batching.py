"""Dynamic micro-batching: requests that arrive within a few milliseconds share one forward pass.

A forward pass costs nearly the same for 1 image (or text) as for 16 on a CPU (the weights are read
once), so under concurrent load batching multiplies throughput. The queue is bounded: when it is full the
server answers 503 at once instead of letting latency grow without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from shoulders.serving.errors import QueueFullError, ServeConfigError

POLL_SECONDS = 0.0005


@dataclass(frozen=True)
class BatchResult:
    probabilities: np.ndarray
    batch_size: int  # how many inputs (images or texts) shared the forward pass
    model_ms: float


class MicroBatcher:
    """Collects queued requests into batches of at most ``max_batch`` inputs, waiting at most
    ``max_wait_ms`` after the first one; runs ``predict`` on one worker thread (models are not
    thread-safe, and one pass at a time uses every core anyway).

    ``max_batch=1`` turns batching off: each request is its own forward pass.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int = 16, max_wait_ms: float = 5.0, max_queue: int = 256) -> None:
        for name, value in (("max_batch", max_batch), ("max_queue", max_queue)):
            if value < 1:
                raise ServeConfigError(f"{name} must be at least 1 (--{name.replace('_', '-')}). Received: {value}")
        if max_wait_ms < 0:
            raise ServeConfigError(f"max_wait_ms must be 0 or more (--max-wait-ms). Received: {max_wait_ms}")
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait_ms / 1000
        self.max_queue = max_queue
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue(self.max_queue)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="shoulders-model")
        self._task = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, pixels: np.ndarray) -> BatchResult:
        """Probabilities for ``pixels`` (k, H, W, 3), or for a text run's texts (k,) as an object array;
        raises `QueueFullError` at once when the queue is full."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited (the app's lifespan starts it).")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((pixels, future))
        except asyncio.QueueFull:
            raise QueueFullError(f"the server is busy ({self.max_queue} requests queued); retry shortly") from None
        return await future

    async def _work(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            count = len(batch[0][0])
            deadline = loop.time() + self.max_wait
            # Polling (not wait_for on get) so a timed-out wait can never swallow a request.
            while count < self.max_batch and loop.time() < deadline:
                if self._queue.empty():
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                batch.append(self._queue.get_nowait())
                count += len(batch[-1][0])
            batch = [item for item in batch if not item[1].done()]  # drop requests that timed out
            if not batch:
                continue
            pixels = np.concatenate([item[0] for item in batch])
            started = time.perf_counter()
            try:
                probabilities = await loop.run_in_executor(self._executor, self.predict, pixels)
            except Exception as error:  # the model failed: every waiting request hears why; the worker lives on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            model_ms = (time.perf_counter() - started) * 1000
            start = 0
            for item_pixels, future in batch:
                rows = probabilities[start : start + len(item_pixels)]
                start += len(item_pixels)
                if not future.done():
                    future.set_result(BatchResult(rows, len(pixels), model_ms))
