"""`RunConfig`: everything that shapes a run, typed, frozen, validated, saved in the run folder.

The one place the fine-tuning policy's defaults live (fastai's ``fine_tune`` spirit): freeze the
backbone, train the head at ``lr``, unfreeze the top ~30% of blocks with BatchNorm frozen, continue
at ``lr / 100``, early stopping on validation loss with the best weights restored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
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
        means no augmentation, ``augmentation`` may be a dict; everything else is a field."""
        return cls(data=str(data), **augmentation_option(options))


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
    _positive("batch_size", config.batch_size)
    _positive("lr", config.lr)
    _positive("patience", config.patience)
    if config.epochs_head < 0 or config.epochs_finetune < 0:
        raise ConfigError("epochs must be >= 0")
    if config.strategy in ("two-phase", "feature-extraction") and config.epochs_head < 1:
        raise ConfigError(f"strategy {config.strategy} trains the head first: --epochs-head must be at least 1")
    if config.strategy == "two-phase" and config.finetune_lr >= config.lr:
        raise ConfigError(
            f"the fine-tuning LR ({config.finetune_lr:g}) must be below the head LR ({config.lr:g}): a high LR on "
            "unfrozen pretrained layers destroys what they learned. Use 10-100x lower, e.g. --lr-finetune "
            f"{config.lr / 100:g}."
        )
    if config.unfreeze is not None and config.unfreeze < 1:
        raise ConfigError("--unfreeze counts backbone blocks to train in phase 2: give 1 or more")
    if config.layer_decay is not None and not 0 < config.layer_decay <= 1:
        raise ConfigError("--layer-decay must be in (0, 1]: each lower block's LR is multiplied by it")
    if not 0 <= config.dropout < 1:
        raise ConfigError("dropout must be in [0, 1)")
    if config.crop_fraction is not None and not 0 < config.crop_fraction <= 1:
        raise ConfigError("crop_fraction must be in (0, 1]")
    for name in ("val_fraction", "test_fraction"):
        if not 0 < getattr(config, name) < 0.5:
            raise ConfigError(f"{name} must be between 0 and 0.5")
    if config.precision not in PRECISIONS:
        raise ConfigError(f"unknown --precision {config.precision!r}; choose one of {', '.join(PRECISIONS)}")
    _check_devices(config.devices)
    _check_engine(config)
    if config.max_train is not None and config.max_train < 4:
        raise ConfigError("--max-train must be at least 4 rows (2 classes x 2)")
    if config.max_length is not None and not 8 <= config.max_length <= MAX_TEXT_LENGTH:
        raise ConfigError(f"--max-length counts tokens: give 8 to {MAX_TEXT_LENGTH}")
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
    if config.strategy not in ("feature-extraction", "two-phase") or (config.strategy == "two-phase" and config.augment):
        raise ConfigError(
            "--engine ray computes the frozen backbone's features once, which only --strategy feature-extraction "
            "and two-phase with --no-augment do (with augmentation each epoch sees new pixels): add --no-augment, "
            "or use --engine local"
        )


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


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be positive. Received: {value}")
