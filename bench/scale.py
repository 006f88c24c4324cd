"""How shoulders' own costs grow with the number of images: seconds per image and peak memory of each
stage at N = 1,000, 4,000 and 16,000 distinct photo-like JPEGs.

The JPEGs are made once (``--work DIR``, reused): random crops, flips and colour jitter of the
hymenoptera photos, 2 classes, 256 px on the long side, quality 85. Each N runs in its own process,
stage after stage, as `shoulders train` and `shoulders predict` run them:

    scan      the class folders walked, files checked (shoulders.data.dataset._scan)
    hash      content hashes for the duplicate check (_unique)
    decode    decoded into the uint8 memory-mapped cache (cached_images + decode_many), cold cache
    extract   frozen-backbone features of every image (extract_features, the folded EfficientNet-Lite0)
    head      the head trained on the cached features, 5 epochs (Dense, Adam, as phase 1 does)
    predict   `predict_to_file` over the folder to a Parquet file (a run trained once on the 1,000 set)

The files are read once before the stages, so every N starts with them in the page cache. Memory per
stage: peak RSS (VmHWM, reset before the stage) and peak anonymous RSS (sampled every 20 ms),
which leaves out the file-backed pages of the memory-mapped cache. Decoding is also timed with 1 thread
and with every core on the same 1,000 images (target: at least 1.7x on 2 cores). Last, the whole
`shoulders predict RUN @list --out p.parquet` process on 500, 2,000 and 4,000 of the JPEGs plus a corrupt
file: its peak RSS (targets: under 1.5 GB at 2,000; less than 150 MB more at 4,000 than at 500).

    python bench/scale.py [--sizes 1000 4000 16000] [--work /tmp/shoulders-scale] [--image-size 224]
                          [--stages scan hash decode ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "hymenoptera"
STAGES = ("scan", "hash", "decode", "extract", "head", "predict")
HEAD_EPOCHS = 5
TARGET_TIME_RATIO, TARGET_RSS_MB, TARGET_DECODE_SPEEDUP = 1.3, 300, 1.7


def make_photos(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` distinct JPEGs in ``folder``/{ants,bees}: jittered crops of hymenoptera's photos."""
    import numpy as np
    from PIL import Image, ImageEnhance, ImageOps

    done = folder / f".done-{count}"
    if done.exists():
        return folder
    sources = {name: sorted((DATA / "train" / name).glob("*.jpg")) for name in ("ants", "bees")}
    rng = np.random.default_rng(seed)
    for index in range(count):
        name = ("ants", "bees")[index % 2]
        target = folder / name / f"{index:06d}.jpg"
        if target.exists():
            continue
        with Image.open(sources[name][int(rng.integers(len(sources[name])))]) as photo:
            image = photo.convert("RGB")
        width, height = image.size
        scale = rng.uniform(0.6, 1.0)
        w, h = int(width * scale), int(height * scale)
        left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        image = image.crop((left, top, left + w, top + h))
        image = ImageOps.mirror(image) if rng.random() < 0.5 else image
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.6, 1.4))
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
        image.thumbnail((256, 256))
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, quality=85)
    done.touch()
    return folder


class Memory:
    """Peak RSS since the last reset, and peak anonymous RSS sampled in a thread."""

    def __init__(self) -> None:
        self.anon_peak = 0
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            self.anon_peak = max(self.anon_peak, _status("RssAnon"))
            time.sleep(0.02)

    def reset(self) -> None:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        self.anon_peak = _status("RssAnon")

    def read(self) -> dict:
        return {"peak_rss_mb": _status("VmHWM") / 1024, "peak_anon_mb": max(self.anon_peak, _status("RssAnon")) / 1024}


def _status(field: str, path: str = "/proc/self/status") -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


REPEATED = ("scan", "hash")  # sub-millisecond per image: the best of 3, as timing cheap work needs


def child(folder: Path, run_path: Path, image_size: int, count: int, stages: tuple[str, ...] = STAGES) -> dict:
    """Every stage on ``count`` images, in this process; returns {stage: {seconds, per_image_ms, memory}}."""
    import keras
    import numpy as np

    from shoulders import backbones
    from shoulders.data.cache import cache_key, cached_images
    from shoulders.data.dataset import _scan, _unique
    from shoulders.data.images import decode_many
    from shoulders.data.splits import find_layout
    from shoulders.predicting import BatchJob, Inputs, predict_to_file
    from shoulders.training.features import extract_features

    memory, results, size = Memory(), {}, (image_size, image_size)
    extractor = backbones.feature_extractor("efficientnet_lite0", image_size)
    work: dict = {}

    def scan():
        work["classes"], work["candidates"], _ = _scan(folder, find_layout(folder))

    def hash_():
        work["kept"], work["hashes"], _ = _unique(work["candidates"])

    def decode():
        key = cache_key([(c.name, h) for c, h in zip(work["kept"], work["hashes"])], size, 1.0)
        paths = [c.path for c in work["kept"]]
        work["images"] = cached_images(key, len(paths), size, lambda out: decode_many(paths, size, out=out, progress=False)[1:], work["cache"])[0]

    def extract():
        work["features"] = extract_features(extractor, work["images"], progress=False)

    def head():
        labels = np.array([c.label for c in work["kept"]])
        model = keras.Sequential([keras.Input((work["features"].shape[1],)), keras.layers.Dropout(0.2), keras.layers.Dense(2)])
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(work["features"], labels, batch_size=32, epochs=HEAD_EPOCHS, verbose=0)

    def predict():
        out = Path(work["cache"]) / "predictions.parquet"
        summary = predict_to_file(BatchJob(run_path, Inputs((str(folder),)), out), progress=False)
        assert summary.written == count and summary.failed == 0, summary

    for path in folder.rglob("*.jpg"):  # every N starts with its files in the page cache: stages measure work, not the disk
        path.read_bytes()
    with tempfile.TemporaryDirectory() as cache:
        work["cache"] = cache
        for name, stage in zip(STAGES, (scan, hash_, decode, extract, head, predict)):
            if name not in stages:
                continue
            memory.reset()
            seconds = float("inf")
            for _ in range(3 if name in REPEATED else 1):
                started = time.perf_counter()
                stage()
                seconds = min(seconds, time.perf_counter() - started)
            per_image = seconds / (count * (HEAD_EPOCHS if name == "head" else 1))
            results[name] = {"seconds": seconds, "per_image_ms": 1000 * per_image, **memory.read()}
    return results


def decode_speedup(folder: Path, image_size: int) -> dict:
    """decode_many on the same files with one thread and with every core, best of 2 each."""
    from shoulders.data.images import decode_many

    paths = sorted(folder.rglob("*.jpg"))[:1000]
    timings = {}
    for workers in (1, os.cpu_count()):
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            decode_many(paths, image_size, workers=workers, progress=False)
            best = min(best, time.perf_counter() - started)
        timings[workers] = best
    return {"one_thread_s": timings[1], "all_cores_s": timings[os.cpu_count()], "cores": os.cpu_count(),
            "speedup": timings[1] / timings[os.cpu_count()]}


def cli_predict_memory(run_path: Path, folder: Path, counts: list[int]) -> dict:
    """`shoulders predict RUN @list --out p.parquet` as a user runs it, for the first ``count`` JPEGs plus one
    corrupt file: the whole process's peak RSS (wait4's ru_maxrss), rows and failures."""
    import pyarrow.parquet as pq

    paths = sorted(folder.rglob("*.jpg"))
    corrupt = folder.parent / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for count in counts:
            listing, out = Path(work) / f"list{count}.txt", Path(work) / f"p{count}.parquet"
            listing.write_text("\n".join(map(str, [*paths[:count], corrupt])) + "\n")
            command = [sys.executable, "-m", "shoulders.cli.main", "predict", str(run_path), f"@{listing}", "--out", str(out)]
            started = time.perf_counter()
            child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            peak = _child_peak_rss(child)
            table = pq.read_table(out, columns=["error"]).column("error").to_pylist()
            results[count] = {"peak_rss_mb": peak / 1024, "rows": len(table), "failed": sum(map(bool, table)),
                              "seconds": time.perf_counter() - started, "exit": child.returncode}
            print(f"predict CLI, {count} JPEGs + 1 corrupt: {results[count]}", flush=True)
    return results


def _child_peak_rss(child: subprocess.Popen) -> int:
    """The child's own VmHWM (kB), read until it exits: wait4's ru_maxrss would count this (large) parent's
    memory at fork time."""
    peak = 0
    while child.poll() is None:
        try:
            peak = max(peak, _status("VmHWM", f"/proc/{child.pid}/status"))
        except OSError:
            break
        time.sleep(0.05)
    child.wait()
    return peak


def train_run(folder: Path, out: Path, image_size: int) -> Path:
    import shoulders

    if not (out / "metrics.json").exists():
        shoulders.train(folder, out=out, image_size=image_size, strategy="feature-extraction", augment=False,
                        epochs_head=5, progress=False, cache_dir=str(out.parent / "train-cache"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "shoulders-scale")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--predict-counts", type=int, nargs="+", default=[500, 2000, 4000])
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="a prefix of the stages (each needs the ones before it)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, run_path, count = args.child
        print(json.dumps(child(Path(folder), Path(run_path), args.image_size, int(count), tuple(args.stages))))
        return
    os.environ.setdefault("SHOULDERS_TRACKING", "off")
    os.environ.setdefault("SHOULDERS_REPORT", "off")
    folders = {n: make_photos(args.work / f"n{n}", n) for n in args.sizes}
    run_path = train_run(folders[min(args.sizes)], args.work / "run", args.image_size)
    table = {}
    for n in args.sizes:
        command = [sys.executable, __file__, "--image-size", str(args.image_size), "--stages", *args.stages,
                   "--child", str(folders[n]), str(run_path), str(n)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        table[n] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"N={n}: " + ", ".join(f"{stage} {row['per_image_ms']:.3f} ms/img {row['peak_anon_mb']:.0f} MB" for stage, row in table[n].items()), flush=True)
    report(table, decode_speedup(folders[min(args.sizes)], args.image_size), args.sizes, args.stages)
    if "predict" not in args.stages:
        return
    memory = cli_predict_memory(run_path, folders[max(args.sizes)], args.predict_counts)
    low, high = min(args.predict_counts), max(args.predict_counts)
    print(f"predict CLI peak RSS: " + ", ".join(f"{n}: {row['peak_rss_mb']:.0f} MB" for n, row in memory.items())
          + f"; {low} -> {high}: {memory[high]['peak_rss_mb'] - memory[low]['peak_rss_mb']:+.0f} MB (target < 150 MB)")
    print(json.dumps({"predict_cli": memory}))


def report(table: dict, speedup: dict, sizes: list[int], stages: list[str]) -> None:
    small, large = min(sizes), max(sizes)
    print(f"\n| stage | " + " | ".join(f"ms/image N={n}" for n in sizes) + f" | time ratio {large}/{small} | "
          + " | ".join(f"peak RSS MB N={n} (anon)" for n in sizes) + f" | anon RSS growth MB |")
    print("|---" * (2 * len(sizes) + 3) + "|")
    verdict = {}
    for stage in stages:
        ratio = table[large][stage]["per_image_ms"] / table[small][stage]["per_image_ms"]
        growth = table[large][stage]["peak_anon_mb"] - table[small][stage]["peak_anon_mb"]
        verdict[stage] = ratio <= TARGET_TIME_RATIO and growth <= TARGET_RSS_MB
        print(f"| {stage} | " + " | ".join(f"{table[n][stage]['per_image_ms']:.3f}" for n in sizes) + f" | {ratio:.2f} | "
              + " | ".join(f"{table[n][stage]['peak_rss_mb']:.0f} ({table[n][stage]['peak_anon_mb']:.0f})" for n in sizes)
              + f" | {growth:+.0f} |")
    print(f"\ndecode of 1,000 images: 1 thread {speedup['one_thread_s']:.2f} s, {speedup['cores']} threads "
          f"{speedup['all_cores_s']:.2f} s: {speedup['speedup']:.2f}x (target >= {TARGET_DECODE_SPEEDUP}x on 2 cores)")
    print(f"targets (time <= {TARGET_TIME_RATIO}x, anon RSS growth <= {TARGET_RSS_MB} MB): "
          + ", ".join(f"{stage} {'met' if ok else 'MISSED'}" for stage, ok in verdict.items()))
    print(json.dumps({"table": table, "decode": speedup, "targets_met": verdict}))


if __name__ == "__main__":
    main()
