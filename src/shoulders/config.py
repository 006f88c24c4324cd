"""`RunConfig`: everything that shapes a run, typed, frozen, validated, saved in the run folder.

The one place the fine-tuning policy's defaults live (fastai's ``fine_tune`` spirit): freeze the
backbone, train the head at ``lr``, unfreeze the top ~30% of blocks with BatchNorm frozen, continue
at ``lr / 100``, early stopping on validation loss with the best weights restored.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoulders.errors import ShouldersError

STRATEGIES = ("two-phase", "feature-extraction", "full", "scratch")
TASKS = ("image", "text")
DEFAULT_BACKBONES = {"image": "efficientnet_lite0", "text": "minilm_l6"}
# The fine-tuning policy's defaults, in this one place (the CLI's option defaults read them too).
DEFAULT_LR = 1e-3  # phase 1, the head alone (Adam)
DEFAULT_PATIENCE = 3  # early stopping: epochs without a better val loss
DEFAULT_EPOCHS_HEAD = 20
DEFAULT_EPOCHS_FINETUNE = 10
DEFAULT_UNFREEZE_FRACTION = 0.3  # phase 2 unfreezes the top ~30% of blocks (BatchNorm stays frozen)
# Phase-2 LR = lr / divisor: 1e-5 for CNNs (Keras guide), 2e-5 for BERT encoders (the BERT paper's range).
DEFAULT_FINETUNE_DIVISOR = {"image": 100.0, "text": 50.0}
DEFAULT_LAYER_DECAY: float | None = None  # layer-wise LR decay in phase 2: off unless asked for
MAX_TEXT_LENGTH = 512
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
TRAIN_ENGINES = ("local", "ray")  # train --engine: where the frozen backbone's features are computed


class ConfigError(ShouldersError, ValueError):
    """A run option is out of range; the message says which and what is allowed."""


@dataclass(frozen=True)
class Augmentation:
    """Random transforms applied to training images only (identity at inference)."""

    flip: bool = True
    rotation: float = 0.1
    zoom: float = 0.1

    @property
    def enabled(self) -> bool:
        return self.flip or self.rotation > 0 or self.zoom > 0


@dataclass(frozen=True)
class RunConfig:
    """The recipe's options. Defaults work for a few hundred images; every field round-trips via JSON."""

    data: str
    backbone: str | None = None  # None: efficientnet_lite0 for images, minilm_l6 for text
    task: str = "image"
    strategy: str = "two-phase"
    weights: str | None = "imagenet"
    image_size: int | None = None
    crop_fraction: float | None = None  # None: the backbone's own (e.g. 224/256), as it was trained
    batch_size: int = 32
    epochs_head: int = DEFAULT_EPOCHS_HEAD
    epochs_finetune: int = DEFAULT_EPOCHS_FINETUNE
    patience: int = DEFAULT_PATIENCE
    lr: float = DEFAULT_LR
    lr_finetune: float | None = None
    unfreeze: int | None = None
    layer_decay: float | None = DEFAULT_LAYER_DECAY
    dropout: float = 0.2
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    # where it runs: "auto" is bfloat16 compute on an accelerator that has it, float32 elsewhere; devices
    # per process ("all", a count, or None: all on an accelerator, 1 on a CPU). A started run saves both
    # as resolved ("float32", 2).
    precision: str = "auto"
    devices: int | str | None = None
    # the frozen backbone's features ("feature-extraction", or phase 1 without augmentation) on a Ray
    # cluster: RAY_ADDRESS or ray_address, else a local one
    engine: str = "local"
    ray_address: str | None = None
    out: str | None = None
    cache_dir: str | None = None
    # text task only: columns (a name, or a position for a file without header), explicit split files,
    # a stratified subset of the training rows, and the token length (None: from the training texts)
    text_column: str | None = None
    label_column: str | None = None
    test_file: str | None = None
    val_file: str | None = None
    max_train: int | None = None
    max_length: int | None = None

    def __post_init__(self) -> None:
        if self.backbone is None and self.task in TASKS:
            object.__setattr__(self, "backbone", DEFAULT_BACKBONES[self.task])
        if self.task == "text":
            object.__setattr__(self, "augmentation", None)  # image transforms: nothing to do for texts
        validate(self)

    @property
    def finetune_lr(self) -> float:
        if self.lr_finetune is not None:
            return self.lr_finetune
        return self.lr / DEFAULT_FINETUNE_DIVISOR.get(self.task, 100.0)

    @property
    def scratch_lr(self) -> float:
        """The from-scratch baseline's LR: ``lr`` for CNNs; lr/10 (1e-4, BERT's pre-training LR) for a
        transformer, which at 1e-3 from random init stalls at chance: a fair baseline, not a straw man."""
        return self.lr / 10 if self.task == "text" else self.lr

    @property
    def augment(self) -> bool:
        return self.task == "image" and self.augmentation is not None and self.augmentation.enabled

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in values.items() if key in known}
        if isinstance(values.get("augmentation"), dict):
            values["augmentation"] = Augmentation(**values["augmentation"])
        return cls(**values)

    @classmethod
    def from_options(cls, data: str, **options: Any) -> RunConfig:
        """A config from Python keyword options (`shoulders.train`, compare, the CLI): ``augment=False``
        means no augmentation, ``augmentation`` may be a dict; everything else is a field. The paths it
        reads from (data, split files, cache) become absolute, so the saved run works from any folder."""
        options = {key: absolute_path(options[key]) if key in INPUT_PATHS else value for key, value in options.items()}
        return cls(data=absolute_path(data), **augmentation_option(options))


EMBEDDED_DATASETS = ("digits",)
INPUT_PATHS = ("test_file", "val_file", "cache_dir")  # besides data: the paths a run reads, saved absolute


def absolute_path(value: str | os.PathLike | None) -> str | None:
    """``value`` as an absolute, resolved path (an embedded dataset's name and None stay as they are)."""
    if value is None or str(value) in EMBEDDED_DATASETS:
        return None if value is None else str(value)
    return str(Path(value).expanduser().resolve())


def augmentation_option(options: dict[str, Any]) -> dict[str, Any]:
    """``augment`` (a bool) and ``augmentation`` (an `Augmentation`, a dict or None) as the one
    ``augmentation`` field: texts are never augmented; ``augment=True`` without one gives the default."""
    options = dict(options)
    augment = options.pop("augment", None)
    augmentation = options.pop("augmentation", Augmentation() if augment is not False else None)
    if isinstance(augmentation, dict):
        augmentation = Augmentation(**augmentation)
    if augment is True and augmentation is None:
        augmentation = Augmentation()
    if augment is False or options.get("task", "image") != "image":
        augmentation = None
    return {**options, "augmentation": augmentation}


def validate(config: RunConfig) -> None:
    """Refuse options that would silently give a bad or dishonest run."""
    if config.task not in TASKS:
        raise ConfigError(f"unknown task {config.task!r}; choose one of {', '.join(TASKS)}")
    if config.strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {config.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    _check_numbers(config)
    if config.strategy in ("two-phase", "feature-extraction") and config.epochs_head < 1:
        raise ConfigError(f"strategy {config.strategy} trains the head first: --epochs-head must be at least 1")
    if config.strategy == "two-phase" and config.finetune_lr >= config.lr:
        raise ConfigError(
            f"the fine-tuning LR ({config.finetune_lr:g}) must be below the head LR ({config.lr:g}): a high LR on "
            "unfrozen pretrained layers destroys what they learned. Use 10-100x lower, e.g. --lr-finetune "
            f"{config.lr / 100:g}."
        )
    if config.precision not in PRECISIONS:
        raise ConfigError(f"unknown --precision {config.precision!r}; choose one of {', '.join(PRECISIONS)}")
    _check_devices(config.devices)
    _check_engine(config)
    text_only = ("text_column", "label_column", "test_file", "val_file", "max_train", "max_length")
    given = [name for name in text_only if getattr(config, name) is not None]
    if config.task == "image" and given:
        flags = ", ".join("--" + name.replace("_file", "").replace("_", "-") for name in given)
        raise ConfigError(f"{flags} apply to text data: add --task text (or drop them for images)")
    if config.strategy == "scratch" and config.weights not in (None, "imagenet"):
        raise ConfigError("strategy scratch starts from random weights: do not pass --weights with it")


def _check_engine(config: RunConfig) -> None:
    """Ray computes the frozen backbone's features; a run that computes none cannot use it."""
    if config.engine not in TRAIN_ENGINES:
        raise ConfigError(f"train's --engine takes {' or '.join(TRAIN_ENGINES)}. Received: {config.engine!r}")
    if config.engine == "local":
        return
    from shoulders.engines import require

    require(config.engine)  # names the extra to install
    if config.task != "image":
        raise ConfigError("--engine ray computes image features: text runs train with --engine local")
    if config.strategy not in ("feature-extraction", "two-phase") or config.augment:
        raise ConfigError(
            "--engine ray computes the frozen backbone's features once, which only --strategy feature-extraction "
            "or two-phase with --no-augment do (with augmentation each epoch sees new pixels): add --no-augment, "
            "or use --engine local"
        )


# Every numeric option: (field, its flag, lowest, highest, whole numbers only, why), checked by name. A large
# --image-size is refused by the memory it needs (`shoulders.data.memory`), not by a fixed cap.
MAX_SEED = 2**32 - 1  # numpy's and Keras' seeds
NUMERIC_OPTIONS = (
    ("batch_size", "--batch-size", 1, None, True, "images or texts per step"),
    ("epochs_head", "--epochs-head", 0, None, True, "epochs of phase 1"),
    ("epochs_finetune", "--epochs-finetune", 0, None, True, "epochs of phase 2"),
    ("patience", "--patience", 1, None, True, "epochs without a better val loss before stopping"),
    ("lr", "--lr", 0, 10, False, "the head's learning rate, e.g. 0.001"),
    ("lr_finetune", "--lr-finetune", 0, 10, False, "phase 2's learning rate, e.g. 1e-5"),
    ("unfreeze", "--unfreeze", 1, None, True, "backbone blocks to train in phase 2"),
    ("layer_decay", "--layer-decay", 0, 1, False, "each lower block's LR is multiplied by it, e.g. 0.8"),
    ("dropout", "--dropout", 0, 1, False, "the head's dropout rate, below 1, e.g. 0.2"),
    ("crop_fraction", "--crop-fraction", 0, 1, False, "the centre crop of the short side, e.g. 0.875"),
    ("image_size", "--image-size", 8, None, True, "the square input size in pixels, e.g. 224"),
    ("val_fraction", "val_fraction", 0, 0.5, False, "the share carved for validation, e.g. 0.15"),
    ("test_fraction", "test_fraction", 0, 0.5, False, "the share carved for the test set, e.g. 0.15"),
    ("seed", "--seed", 0, MAX_SEED, True, "the seed of the split and the initialisation"),
    ("max_train", "--max-train", 4, None, True, "training rows kept (2 classes x 2 at least)"),
    ("max_length", "--max-length", 8, MAX_TEXT_LENGTH, True, "tokens per text"),
)
# Bounds that a value may not equal (a rate of 0 learns nothing; a dropout of 1 drops everything).
_OPEN_BOUNDS = {"lr": "low", "lr_finetune": "low", "layer_decay": "low", "dropout": "high", "crop_fraction": "low",
                "val_fraction": "both", "test_fraction": "both"}


def _check_numbers(config: RunConfig) -> None:
    for name, flag, low, high, whole, meaning in NUMERIC_OPTIONS:
        value = getattr(config, name)
        if value is not None:
            check_number(flag, value, low=low, high=high, whole=whole, meaning=meaning, open_bound=_OPEN_BOUNDS.get(name, ""))


def check_number(
    option: str, value: Any, *, low: float | None = None, high: float | None = None, whole: bool = False,
    meaning: str = "", open_bound: str = "",
) -> None:
    """``value`` of ``option`` is a finite number (an integer when ``whole``) within [low, high] (a bound
    named by ``open_bound``, "low", "high" or "both", excluded); else a `ConfigError` naming the option."""
    what = f" ({meaning})" if meaning else ""
    kind = "a whole number" if whole else "a finite number"
    is_number = isinstance(value, numbers.Integral if whole else numbers.Real) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value):
        raise ConfigError(f"{option} takes {kind}{what}. Received: {value!r}")
    below = low is not None and (value <= low if open_bound in ("low", "both") else value < low)
    above = high is not None and (value >= high if open_bound in ("high", "both") else value > high)
    if below or above:
        left = "(" if open_bound in ("low", "both") else "["
        right = ")" if open_bound in ("high", "both") else "]"
        span = f"in {left}{low:g}, {high}{right}" if high is not None else (f"above {low:g}" if left == "(" else f"{low:g} or more")
        raise ConfigError(f"{option} must be {span}{what}. Received: {value!r}")


def _check_devices(devices: int | str | None) -> None:
    if devices is None or devices == "all":
        return
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(f"--devices takes 'all' or a count of 1 or more. Received: {devices!r}")


def devices_option(value: str | None) -> int | str | None:
    """``--devices`` as typed ("all", "2") as the config's value ("all", 2)."""
    if value is None or value == "all":
        return value
    if not value.isdigit():
        raise ConfigError(f"--devices takes 'all' or a count of 1 or more. Received: {value!r}")
    return int(value)
