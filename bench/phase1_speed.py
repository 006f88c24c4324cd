"""Phase 1 (frozen backbone, head only), the tutorials' way versus shoulders, as whole processes.

Each approach is a separate process, timed from launch to exit, with cold caches: a fresh,
empty temporary SHOULDERS_CACHE for every run (so shoulders decodes and extracts features from
scratch, as on a first run). Optionally (--drop-page-cache, needs root) the OS page cache is
dropped before every run too, so images and libraries are read from disk.

    a. tutorial:  python bench/tutorial_phase1.py --epochs N --seed S --data DATA
                  (image_dataset_from_directory, no .cache(), frozen backbone recomputed every epoch)
    b. shoulders: shoulders train DATA --backbone efficientnet_lite0 --strategy feature-extraction
                  --no-augment --epochs-head N --patience N --seed S --out TMP/run

Same backbone (EfficientNet-Lite0, ImageNet), same seed, same epochs, no early stopping (patience
= epochs). Prints test accuracy, wall seconds and the speed ratio tutorial / shoulders, and whether
the targets are met: ratio >= 8 and |accuracy difference| <= 1 point. With --repeats R the runs
alternate (tutorial first on even repeats, shoulders first on odd ones) and medians are reported.

    python bench/phase1_speed.py [--repeats 1] [--epochs 20] [--seed 0] [--data DIR] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DEFAULT_DATA = BENCH.parents[0].parent / "shared" / "datasets" / "hymenoptera"
TUTORIAL_SCRIPT = BENCH / "tutorial_phase1.py"
BACKBONE = "efficientnet_lite0"
SPEED_TARGET = 8.0
ACCURACY_TOLERANCE = 0.01  # one point; one hymenoptera test image is 0.65 points


@dataclass
class Result:
    approach: str
    test_accuracy: float
    wall_seconds: float
    inner_seconds: float | None  # the process's own figure: tutorial "seconds", shoulders "train_seconds"
    other_cpu: float | None  # CPU-seconds used by other processes during the run, per wall second (0 = quiet machine)


def shoulders_command() -> list[str]:
    script = Path(sys.executable).parent / "shoulders"
    return [str(script)] if script.exists() else [sys.executable, "-m", "shoulders.cli.main"]


def drop_page_cache() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as handle:
        handle.write("3\n")


def busy_cpu_seconds() -> float | None:
    """CPU time spent busy by the whole machine since boot (Linux /proc/stat), else None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_process(command: list[str], workdir: Path, log_name: str, drop_cache: bool) -> tuple[float, float | None, str]:
    """Run ``command`` with a fresh SHOULDERS_CACHE under ``workdir``.

    Returns (wall seconds, CPU used by other processes per wall second during the run, output).
    """
    cache = workdir / "cache"
    cache.mkdir()
    env = dict(os.environ, SHOULDERS_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    # Like the tutorial, measure training and evaluation only: the publishing steps the tutorial has no
    # counterpart for (report.html ~0.5 s, the MLflow lineage row 0.2-3.5 s) are switched off.
    env.setdefault("SHOULDERS_TRACKING", "off")
    env.setdefault("SHOULDERS_REPORT", "off")
    if drop_cache:
        drop_page_cache()
    machine_before, children_before = busy_cpu_seconds(), children_cpu_seconds()
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    wall = time.perf_counter() - started
    machine_after, children_after = busy_cpu_seconds(), children_cpu_seconds()
    other = None
    if machine_before is not None and machine_after is not None:
        own = children_after - children_before
        other = max(0.0, (machine_after - machine_before) - own) / wall
    (workdir / log_name).write_text(completed.stdout)
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.splitlines()[-30:])
        raise SystemExit(f"{' '.join(command)}\nexited with {completed.returncode}; last lines of its output:\n{tail}")
    return wall, other, completed.stdout


def run_tutorial(args: argparse.Namespace, workdir: Path) -> Result:
    command = [sys.executable, str(TUTORIAL_SCRIPT), "--data", str(args.data), "--epochs", str(args.epochs), "--seed", str(args.seed)]
    wall, other, output = run_process(command, workdir, "tutorial.log", args.drop_page_cache)
    summary = json.loads(output.strip().splitlines()[-1])
    return Result("tutorial (tf.data, backbone every epoch)", float(summary["test_accuracy"]), wall, float(summary["seconds"]), other)


def run_shoulders(args: argparse.Namespace, workdir: Path) -> Result:
    out = workdir / "run"
    command = shoulders_command() + [
        "train", str(args.data),
        "--backbone", BACKBONE,
        "--strategy", "feature-extraction",
        "--no-augment",
        "--epochs-head", str(args.epochs),
        "--patience", str(args.epochs),
        "--seed", str(args.seed),
        "--out", str(out),
    ]  # fmt: skip
    wall, other, _output = run_process(command, workdir, "shoulders.log", args.drop_page_cache)
    metrics = json.loads((out / "metrics.json").read_text())
    inner = metrics.get("train_seconds")
    return Result("shoulders (features cached)", float(metrics["test_accuracy"]), wall, None if inner is None else float(inner), other)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train/ and val/ (default: ../shared/datasets/hymenoptera)")
    parser.add_argument("--epochs", type=int, default=20, help="phase 1 epochs for both, no early stopping (default 20, seed 000)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each approach, alternating; medians reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop-page-cache", action="store_true", help="also drop the OS page cache before every run (root only)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (logs, run folders) and print where")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args()


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def main() -> None:
    args = parse_args()
    args.data = args.data.resolve()
    if not (args.data / "train").is_dir():
        raise SystemExit(f"{args.data} has no train/ folder: pass --data DIR (a folder with train/ and val/).")
    if args.drop_page_cache and not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        raise SystemExit("--drop-page-cache needs write access to /proc/sys/vm/drop_caches (root on Linux).")

    runs: dict[str, list[Result]] = {"tutorial": [], "shoulders": []}
    root = Path(tempfile.mkdtemp(prefix="shoulders-bench-"))
    print(f"phase 1, {args.epochs} epochs, seed {args.seed}, {os.cpu_count()} CPUs, data {args.data}", flush=True)
    try:
        for repeat in range(args.repeats):
            order = ["tutorial", "shoulders"] if repeat % 2 == 0 else ["shoulders", "tutorial"]
            for name in order:
                workdir = root / f"{repeat}-{name}"
                workdir.mkdir()
                result = (run_tutorial if name == "tutorial" else run_shoulders)(args, workdir)
                runs[name].append(result)
                other = "" if result.other_cpu is None else f", other processes used {result.other_cpu:.2f} CPUs"
                print(
                    f"  repeat {repeat + 1}/{args.repeats} {name:9s}: {result.wall_seconds:7.1f} s wall, "
                    f"test accuracy {result.test_accuracy:.4f}{other}",
                    flush=True,
                )
    finally:
        if args.keep:
            print(f"logs and run folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    tutorial_wall = median([r.wall_seconds for r in runs["tutorial"]])
    shoulders_wall = median([r.wall_seconds for r in runs["shoulders"]])
    tutorial_acc = median([r.test_accuracy for r in runs["tutorial"]])
    shoulders_acc = median([r.test_accuracy for r in runs["shoulders"]])
    ratio = tutorial_wall / shoulders_wall
    accuracy_gap = shoulders_acc - tutorial_acc
    speed_ok = ratio >= SPEED_TARGET
    accuracy_ok = abs(accuracy_gap) <= ACCURACY_TOLERANCE + 1e-9

    label = "median " if args.repeats > 1 else ""
    print()
    print(f"{'approach':42s} {label + 'test accuracy':>20s} {label + 'wall s':>14s} {'in-process s':>13s}")
    for name, wall, acc in (("tutorial", tutorial_wall, tutorial_acc), ("shoulders", shoulders_wall, shoulders_acc)):
        inner = [r.inner_seconds for r in runs[name] if r.inner_seconds is not None]
        inner_text = f"{median(inner):.1f}" if inner else "-"
        print(f"{runs[name][0].approach:42s} {acc:20.4f} {wall:14.1f} {inner_text:>13s}")
    print()
    print(f"speed ratio tutorial/shoulders: {ratio:.2f}x   target >= {SPEED_TARGET:g}x: {'MET' if speed_ok else 'NOT MET'}")
    print(f"accuracy difference shoulders - tutorial: {100 * accuracy_gap:+.2f} pt   target within +-1 pt: {'MET' if accuracy_ok else 'NOT MET'}")
    busy = [r for rs in runs.values() for r in rs if r.other_cpu is not None and r.other_cpu > 0.1]
    if busy:
        print(f"warning: during {len(busy)} run(s) other processes used > 0.1 CPU on average: timings are inflated, rerun on a quiet machine")
    print(json.dumps({
        "epochs": args.epochs,
        "repeats": args.repeats,
        "speed_ratio": round(ratio, 3),
        "speed_target_met": speed_ok,
        "accuracy_target_met": accuracy_ok,
        "runs": {name: [asdict(r) for r in rs] for name, rs in runs.items()},
    }))  # fmt: skip
    if args.check and not (speed_ok and accuracy_ok):
        sys.exit(1)


if __name__ == "__main__":
    main()
