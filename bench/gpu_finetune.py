"""GPU fine-tuning throughput: shoulders (Keras 3 on JAX, bf16) against PyTorch timm, same GPU, same run.

Why: shoulders claims to fine-tune as fast as the usual PyTorch recipe. This measures it with the
recipe a PyTorch user would write (timm, AMP bf16, channels_last, ``torch.compile``) on the same
backbone family, the same image size and batch, the same weights trainable, fed from the same
seeded uint8 arrays in host memory. Random weights: throughput does not depend on their values.
Target: shoulders >= 1.0x timm images/s in both configurations.

Configurations (BatchNorm frozen in both, as the fine-tuning policy keeps it):

    top30  the top ~30% of the backbone's blocks (`phases.unfreeze_top`) and the head; timm: the
           same number of its last blocks, ``conv_head`` and the classifier
    full   everything but BatchNorm (`phases.unfreeze_all(freeze_batchnorm=True)`)

Each side runs in its own process (both frameworks grab the GPU; KERAS_BACKEND must be set
before Keras is imported), this script re-run with ``--worker shoulders|timm``; the parent writes
the arrays to a temporary folder, runs the workers one after the other and prints a table.
Images/s counts training steps only: ``steps * batch_size / seconds`` after ``--warmup`` steps.

    python bench/gpu_finetune.py [--steps 50] [--warmup 10] [--configs top30,full] [--json]
        [--shoulders-python PY] [--timm-python PY]
    python bench/gpu_finetune.py --allow-cpu --image-size 64 --batch-size 8 --steps 2 --warmup 1

Without an accelerator (and without ``--allow-cpu``, a code-path check) it prints one line saying
so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the frameworks are imported inside the worker that uses them
    import keras
    import torch

TIMM_NAMES = {f"efficientnet_lite{variant}": f"efficientnet_lite{variant}" for variant in (0, 1, 2)}
CONFIGS = ("top30", "full")
POOL_BATCHES = 8  # distinct batches in the shared array; steps cycle through them
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HEAD_DROPOUT = 0.2  # shoulders' classifier default; timm gets the same drop_rate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="efficientnet_lite0", choices=sorted(TIMM_NAMES))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (compilation included)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, from: top30, full")
    parser.add_argument("--steps-per-execution", type=int, default=16, help="Keras steps_per_execution (shoulders)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--allow-cpu", action="store_true", help="run without an accelerator (a code-path check, not a result)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--shoulders-python", default=sys.executable, help="interpreter with shoulders + jax")
    parser.add_argument("--timm-python", default=sys.executable, help="interpreter with torch + timm")
    parser.add_argument("--worker", choices=("shoulders", "timm"), help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--top-blocks", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    unknown = sorted(set(config_list(args)) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown --configs {', '.join(unknown)}; expected a comma-separated list from: {', '.join(CONFIGS)}")
    for name in ("image_size", "batch_size", "steps", "warmup", "classes", "steps_per_execution"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1. Received: {getattr(args, name)}")


def config_list(args: argparse.Namespace) -> list[str]:
    return [name.strip() for name in args.configs.split(",") if name.strip()]


# ---------------------------------------------------------------- parent


def write_data(args: argparse.Namespace, folder: Path) -> Path:
    """One seeded uint8 array (N, H, W, 3) and int labels, both sides read the same files."""
    rng = np.random.default_rng(args.seed)
    count = POOL_BATCHES * args.batch_size
    np.save(folder / "images.npy", rng.integers(0, 256, (count, args.image_size, args.image_size, 3), dtype=np.uint8))
    np.save(folder / "labels.npy", rng.integers(0, args.classes, count, dtype=np.int32))
    return folder


PROBES = {
    "shoulders": "import jax; d = jax.devices()[0]; print(d.platform, '|', d.device_kind)",
    "timm": (
        "import torch; ok = torch.cuda.is_available(); "
        "print('gpu' if ok else 'cpu', '|', torch.cuda.get_device_name(0) if ok else 'cpu')"
    ),
}


def interpreter(args: argparse.Namespace, framework: str) -> str:
    return args.shoulders_python if framework == "shoulders" else args.timm_python


def probe(python: str, framework: str) -> tuple[str, str]:
    """(platform, device name) as the worker's framework sees it, in a short-lived process."""
    if shutil.which(python) is None:
        raise SystemExit(f"no Python interpreter at {python}: pass --{framework}-python PY")
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([python, "-c", PROBES[framework]], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        needs = "jax (and shoulders)" if framework == "shoulders" else "torch and timm"
        raise SystemExit(f"{python} cannot run the {framework} side (it needs {needs}); pass --{framework}-python PY:\n{done.stderr[-2000:]}")
    platform, _, name = done.stdout.strip().splitlines()[-1].partition(" | ")
    return platform, name


def find_accelerator(args: argparse.Namespace) -> str | None:
    """None when both sides see a GPU (or ``--allow-cpu``); otherwise why not, in one line.

    The JAX side is asked first, so a CPU-only machine says so even without torch installed.
    """
    for framework in ("shoulders", "timm"):
        python = interpreter(args, framework)
        platform, name = probe(python, framework)
        if platform == "cpu" and not args.allow_cpu:
            seen = f"jax.devices()[0] is {name}" if framework == "shoulders" else "torch.cuda.is_available() is False"
            return f"no accelerator found: {seen} ({python})"
    return None


def worker_command(args: argparse.Namespace, framework: str, config: str, data: Path, top_blocks: int | None) -> list[str]:
    command = [interpreter(args, framework), str(Path(__file__).resolve()), "--worker", framework, "--config", config, "--data", str(data)]
    for option in ("backbone", "image_size", "batch_size", "steps", "warmup", "classes", "steps_per_execution", "seed"):
        command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    if args.allow_cpu:
        command.append("--allow-cpu")
    if top_blocks is not None:
        command += ["--top-blocks", str(top_blocks)]
    return command


def run_worker(args: argparse.Namespace, framework: str, config: str, data: Path, top_blocks: int | None = None) -> dict:
    """Run one worker process; its last stdout line is its JSON result (stderr passes through)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if framework == "shoulders":
        env["KERAS_BACKEND"] = "jax"
    command = worker_command(args, framework, config, data, top_blocks)
    print(f"[{framework} {config}] running", file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the {framework} worker ({config}) failed with exit code {done.returncode}: {' '.join(command)}")
    return json.loads(lines[-1])


def measure(args: argparse.Namespace, data: Path) -> list[dict]:
    """Per configuration: shoulders first (it says how many blocks its policy unfroze), then timm."""
    rows = []
    for config in config_list(args):
        ours = run_worker(args, "shoulders", config, data)
        theirs = run_worker(args, "timm", config, data, ours.get("unfrozen_blocks"))
        ratio = ours["images_per_second"] / theirs["images_per_second"]
        rows.append({"config": config, "shoulders": ours, "timm": theirs, "ratio": round(ratio, 3)})
    return rows


def print_table(args: argparse.Namespace, rows: list[dict]) -> None:
    first = rows[0]
    print(f"device: {first['shoulders']['device']} (jax) / {first['timm']['device']} (torch)")
    print(f"{args.backbone} vs timm {TIMM_NAMES[args.backbone]}, {args.image_size}x{args.image_size}, batch "
          f"{args.batch_size}, {args.steps} timed steps after {args.warmup}, {args.classes} classes")
    print("| config | shoulders img/s | timm img/s | ratio | trainable params (shoulders / timm) | timm compiled |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        ours, theirs = row["shoulders"], row["timm"]
        print(f"| {row['config']} | {ours['images_per_second']:.1f} | {theirs['images_per_second']:.1f} | "
              f"{row['ratio']:.2f}x | {ours['trainable_params']:,} / {theirs['trainable_params']:,} | {theirs['compiled']} |")
    met = all(row["ratio"] >= 1.0 for row in rows)
    print(f"target shoulders >= 1.0x timm in every configuration: {'met' if met else 'not met'}")
    if args.allow_cpu:
        print("(--allow-cpu: a code-path check on whatever device was found, not a result)")


def run_parent(args: argparse.Namespace) -> None:
    reason = find_accelerator(args)
    if reason is not None:
        print(reason)
        return
    with tempfile.TemporaryDirectory(prefix="gpu_finetune_") as folder:
        rows = measure(args, write_data(args, Path(folder)))
    if args.json:
        print(json.dumps({"backbone": args.backbone, "image_size": args.image_size, "batch_size": args.batch_size,
                          "steps": args.steps, "warmup": args.warmup, "allow_cpu": args.allow_cpu, "results": rows}))
    else:
        print_table(args, rows)


# ---------------------------------------------------------------- shared by the workers


def load_pool(data: Path) -> tuple[np.ndarray, np.ndarray]:
    return np.load(data / "images.npy"), np.load(data / "labels.npy")


def batch_indices(step: int, batch_size: int, pool_size: int) -> slice:
    start = (step * batch_size) % pool_size
    return slice(start, start + batch_size)


def steps_of(pool: np.ndarray, first_step: int, steps: int, batch_size: int) -> np.ndarray:
    """The images of ``steps`` consecutive steps, in the order the timm side reads them."""
    return np.concatenate([pool[batch_indices(first_step + s, batch_size, len(pool))] for s in range(steps)])


# ---------------------------------------------------------------- shoulders worker (Keras 3 on JAX)


def build_shoulders_model(args: argparse.Namespace) -> tuple[keras.Model, list[str], int]:
    """The recipe's classifier, bf16 compute, float32 logits, trainable as ``args.config`` says."""
    import keras

    from shoulders import backbones
    from shoulders.image.model import build_classifier
    from shoulders.training import phases

    keras.config.set_dtype_policy("mixed_bfloat16")
    model = build_classifier(args.backbone, args.classes, image_size=args.image_size, weights=None,
                             augmentation=None, dropout=HEAD_DROPOUT, seed=args.seed)
    if keras.backend.standardize_dtype(model.output.dtype) != "float32":
        # the loss and its softmax in float32, as Keras' mixed-precision guide has it
        logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(model.output)
        model = keras.Model(model.inputs, logits, name=model.name)
    unfrozen: list[str] = []
    if args.config == "top30":
        unfrozen, _ = phases.unfreeze_top(model, backbones.get(args.backbone), None)
    else:
        phases.unfreeze_all(model, freeze_batchnorm=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=args.steps_per_execution, jit_compile=True)
    return model, unfrozen, phases.trainable_params(model)


def timed_fit(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int) -> tuple[float, float]:
    """Seconds for one epoch of ``fit`` over the arrays, every variable ready; and the last loss."""
    import jax

    jax.block_until_ready([variable.value for variable in model.variables])
    started = time.perf_counter()
    history = model.fit(images, labels, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    jax.block_until_ready([variable.value for variable in model.variables])
    return time.perf_counter() - started, float(history.history["loss"][-1])


def shoulders_worker(args: argparse.Namespace) -> dict:
    os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported, which build_shoulders_model does
    import jax

    model, unfrozen, trainable = build_shoulders_model(args)
    images, labels = load_pool(args.data)
    batch_size, warmup, steps = args.batch_size, args.warmup, args.steps
    timed_fit(model, steps_of(images, 0, warmup, batch_size), steps_of(labels, 0, warmup, batch_size), batch_size)
    seconds, loss = timed_fit(
        model, steps_of(images, warmup, steps, batch_size), steps_of(labels, warmup, steps, batch_size), batch_size
    )
    device = jax.devices()[0]
    return {
        "framework": "shoulders", "config": args.config, "device": f"{device.platform}: {device.device_kind}",
        "images_per_second": round(steps * batch_size / seconds, 2), "seconds": round(seconds, 4), "steps": steps,
        "batch_size": batch_size, "trainable_params": trainable, "last_loss": round(loss, 4),
        "unfrozen_blocks": sum(1 for name in unfrozen if name.startswith("block")), "unfrozen": unfrozen,
        "compiled": "xla", "versions": {"jax": jax.__version__, "keras": __import__("keras").__version__},
    }


# ---------------------------------------------------------------- timm worker (PyTorch)


def set_timm_trainable(model: torch.nn.Module, config: str, top_blocks: int | None) -> None:
    """top30: the last ``top_blocks`` blocks, conv_head and the classifier; full: all. BatchNorm frozen in both."""
    import torch

    if config == "top30":
        if top_blocks is None:
            raise SystemExit("--top-blocks is needed with --config top30 (the parent passes shoulders' count)")
        model.requires_grad_(False)
        blocks = [block for stage in model.blocks for block in stage]
        for module in blocks[len(blocks) - top_blocks:] + [model.conv_head, model.classifier]:
            module.requires_grad_(True)
    else:
        model.requires_grad_(True)
    model.train()
    for module in model.modules():
        # frozen BatchNorm, as shoulders' policy: running statistics kept (eval), gamma and beta fixed
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
            module.requires_grad_(False)


def build_timm_model(args: argparse.Namespace, device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer, int]:
    import timm
    import torch

    model = timm.create_model(TIMM_NAMES[args.backbone], pretrained=False, num_classes=args.classes, drop_rate=HEAD_DROPOUT)
    model = model.to(device).to(memory_format=torch.channels_last)
    set_timm_trainable(model, args.config, args.top_blocks)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=1e-5, fused=device.type == "cuda")
    return model, optimizer, sum(p.numel() for p in parameters)


def make_timm_step(forward: Callable, optimizer: torch.optim.Optimizer, device: torch.device) -> Callable:
    """One training step on a uint8 NHWC batch already on the device: normalise, forward, backward, update."""
    import torch
    import torch.nn.functional as functional

    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
    scale = 1 / (torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255)

    def step(images, labels) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float().contiguous(memory_format=torch.channels_last)
        x = (x - mean) * scale
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = functional.cross_entropy(forward(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def run_timm_steps(
    step: Callable, images: torch.Tensor, labels: torch.Tensor, first_step: int, steps: int, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """Seconds for ``steps`` steps fed from the pinned host tensors, synchronised at both ends; last loss."""
    import torch

    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    synchronize()
    started = time.perf_counter()
    for index in range(first_step, first_step + steps):
        rows = batch_indices(index, batch_size, len(images))
        loss = step(images[rows].to(device, non_blocking=True), labels[rows].to(device, non_blocking=True).long())
    synchronize()
    return time.perf_counter() - started, float(loss)


def warm_up_timm(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, pool: tuple[torch.Tensor, torch.Tensor], args: argparse.Namespace, device: torch.device
) -> tuple[Callable, str]:
    """The warm-up steps through ``torch.compile(model)``; the step and whether it compiled.

    On CPU (``--allow-cpu`` only) a failing compile falls back to eager; on a GPU it is an error.
    """
    import torch

    images, labels = pool
    try:
        step = make_timm_step(torch.compile(model), optimizer, device)
        run_timm_steps(step, images, labels, 0, args.warmup, args.batch_size, device)
        return step, "torch.compile"
    except Exception as error:  # noqa: BLE001  (inductor needs a C++ toolchain on CPU)
        if device.type == "cuda":
            raise
        print(f"torch.compile failed on CPU, running eager: {type(error).__name__}: {error}"[:500], file=sys.stderr)
    step = make_timm_step(model, optimizer, device)
    run_timm_steps(step, images, labels, 0, args.warmup, args.batch_size, device)
    return step, "eager (compile failed on CPU)"


def timm_worker(args: argparse.Namespace) -> dict:
    import timm
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, optimizer, trainable = build_timm_model(args, device)
    images, labels = load_pool(args.data)
    pin = device.type == "cuda"  # pinned host memory: asynchronous copies to the GPU
    pool = tuple(torch.from_numpy(array).pin_memory() if pin else torch.from_numpy(array) for array in (images, labels))
    step, compiled = warm_up_timm(model, optimizer, pool, args, device)
    seconds, loss = run_timm_steps(step, *pool, args.warmup, args.steps, args.batch_size, device)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    return {
        "framework": "timm", "config": args.config, "device": f"{device.type}: {name}",
        "images_per_second": round(args.steps * args.batch_size / seconds, 2), "seconds": round(seconds, 4),
        "steps": args.steps, "batch_size": args.batch_size, "trainable_params": trainable, "last_loss": round(loss, 4),
        "compiled": compiled, "versions": {"torch": torch.__version__, "timm": timm.__version__},
    }


# ---------------------------------------------------------------- entry point


def main() -> None:
    args = parse_args()
    if args.worker is None:
        run_parent(args)
        return
    if args.config is None or args.data is None:
        raise SystemExit("--worker needs --config and --data (the parent script passes them)")
    result = shoulders_worker(args) if args.worker == "shoulders" else timm_worker(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
