"""Ray Data: ``map_batches`` over an actor pool, one model per actor (GPUs per actor when the cluster has
them). ``RAY_ADDRESS`` or ``address`` joins an existing cluster; otherwise ``ray.init`` starts a local one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

# A quarter CPU per actor (a model runs its own threads whatever Ray reserves): on a small machine the pool
# must fit Ray Data's per-operator budget and leave CPUs to its other tasks. With a whole CPU per actor and
# a repartition a 2-core local cluster was seen to hang for 8 minutes; with half a CPU its budget (half the
# cluster) admitted one actor of two.
ACTOR_CPUS = 0.25
ACTOR_START_S = 600


@dataclass(frozen=True)
class RayPool:
    """Where and how wide: ``workers`` actors (default: one per CPU, or per GPU when there are GPUs)."""

    address: str | None = None
    workers: int | None = None
    batch_size: int = 32


class _Actor:
    """Builds the work function once, in the actor's process."""

    def __init__(self, factory: Callable[[], Callable]) -> None:
        self.work = factory()

    def __call__(self, batch):
        return self.work(batch)


def connect(address: str | None) -> None:
    import logging

    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    import ray.data  # noqa: F401  (configures its loggers, which are then quietened)

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its progress lines every 10 s
    # Before any dataset is made (each keeps a copy of the context it was made in):
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.wait_for_min_actors_s = ACTOR_START_S  # start on the whole pool, not on the first actor ready
    context.enable_progress_bars = False  # shoulders shows its own


def actor_options(pool: RayPool) -> dict:
    """``map_batches`` options for the pool: its size and each actor's CPUs or GPUs."""
    import ray
    from ray.data import ActorPoolStrategy

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    workers = pool.workers or max(1, gpus or int(resources.get("CPU", 1)))
    per_actor = {"num_gpus": 1} if gpus else {"num_cpus": ACTOR_CPUS}
    return {"compute": ActorPoolStrategy(size=workers), "batch_size": pool.batch_size, **per_actor}


def map_batches(dataset, factory: Callable[[], Callable], pool: RayPool, batch_format: str = "pandas") -> Iterator:
    """``factory()``'s function over ``dataset``'s batches on the actor pool, results streamed in input order."""
    mapped = dataset.map_batches(
        _Actor, fn_constructor_kwargs={"factory": factory}, batch_format=batch_format, **actor_options(pool)
    )
    yield from mapped.iter_batches(batch_size=None, batch_format=batch_format)


def from_items(items: list[dict], pool: RayPool):
    """A dataset of ``items`` in enough blocks for every actor to get work."""
    import ray.data

    workers = actor_options(pool)["compute"].min_size
    blocks = max(1, min(len(items), max(2 * workers, len(items) // (4 * pool.batch_size))))
    return ray.data.from_items(items, override_num_blocks=blocks)


def from_arrays(rows, pool: RayPool):
    """A dataset of an array's rows (column ``data``), copied block by block (from a memmap too) into Ray's
    object store: blocks of ``pool.batch_size`` rows, or larger so that there are at most 8 per actor."""
    import numpy as np
    import ray.data

    workers = actor_options(pool)["compute"].min_size
    size = max(pool.batch_size, -(-len(rows) // max(1, 8 * workers)))
    return ray.data.from_numpy([np.asarray(rows[start : start + size]) for start in range(0, len(rows), size)])
