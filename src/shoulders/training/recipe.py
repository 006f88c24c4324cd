"""The recipe, end to end: data -> phase 1 (head) -> phase 2 (top blocks) -> honest test -> run folder."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np
from rich.console import Console

from shoulders import backbones
from shoulders.config import RunConfig
from shoulders.data import PreparedData, load_digits, prepare
from shoulders.evaluation.metrics import classification_metrics, softmax
from shoulders.io import save_weights
from shoulders.reporting.publish import publish_run
from shoulders.run import Run, RunFolder, new_run_path
from shoulders.training import guardrails, phases
from shoulders.training.batches import ArrayBatches
from shoulders.training.callbacks import FeatureValidation, ResumableEarlyStopping, RichProgress
from shoulders.training.features import cached_features, feature_cache_dir
from shoulders.training.model import HEAD_LAYERS, build_classifier, fast_feature_model, head_model


class ResumeError(ValueError):
    """``--resume`` was asked for a folder that holds no resumable run."""


@dataclass
class PhaseResult:
    epochs_run: int = 0  # the epoch count at the end of the phase (numbering continues across phases)
    history: list[dict] = field(default_factory=list)
    trainable_params: int = 0
    features: FeaturePath | None = None


@dataclass
class FeaturePath:
    """The frozen backbone's features and the head trained on them: while the backbone stays frozen,
    ``head(features(x))`` is exactly the final model, so evaluation reuses the cached features."""

    head: keras.Model
    cached: dict[str, np.ndarray]

    @classmethod
    def compute(cls, model: keras.Model, config: RunConfig, inputs: TaskInputs, splits: tuple[str, ...]) -> FeaturePath:
        """Features of ``splits`` in one pass, from the cache when seen before."""
        features = inputs.features(model, config, splits)
        bounds = np.cumsum([len(inputs.data.splits[split]) for split in splits])[:-1]
        return cls(head_model(model), dict(zip(splits, np.split(features, bounds))))

    def probabilities(self, split: str) -> np.ndarray:
        kernel, bias = self.head.get_layer("logits").get_weights()  # dropout is the identity at inference
        return softmax(self.cached[split] @ kernel + bias)


class TaskInputs(Protocol):
    """What the recipe needs from a task's data (images or texts), and nothing else."""

    data: Any  # classes, labels, names, splits, fingerprint

    def features(self, model: keras.Model, config: RunConfig, splits: tuple[str, ...]) -> np.ndarray:
        """Frozen-backbone pooled features of ``splits``' rows, concatenated in that order."""

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> keras.utils.PyDataset:
        """(inputs, labels) batches of a split, for ``fit``."""

    def probabilities(self, model: keras.Model, split: str, batch_size: int) -> np.ndarray:
        """Class probabilities of a split's rows, in data order."""

    def finetune_view(self, model: keras.Model, blocks: list[str], config: RunConfig) -> tuple[keras.Model, Any]:
        """(the model phase 2 fits, its ``batches`` function): the classifier itself, or a model of its
        unfrozen top that shares its layers and trains on the frozen bottom's cached outputs."""


@dataclass
class ImageInputs:
    data: PreparedData
    spec: backbones.BackboneSpec
    inference_body: keras.Model | None = None  # the frozen body's inference form, if already built

    def features(self, model: keras.Model, config: RunConfig, splits: tuple[str, ...]) -> np.ndarray:
        extractor = fast_feature_model(model, self.spec, self.inference_body)  # BatchNorm folded: same function, ~2x faster
        rows = np.concatenate([self.data.splits[split] for split in splits])
        names = "\n".join(self.data.names[row] for row in rows)
        key = [self.data.fingerprint, config.backbone, str(model.input_shape), _weights_sha(config), names]
        features, _ = cached_features(extractor, self.data.images[rows], key, feature_cache_dir(config.cache_dir))
        return features

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> ArrayBatches:
        x, y = self.data.subset(split)
        return ArrayBatches(x, y, batch_size, shuffle=shuffle, seed=seed)

    def probabilities(self, model: keras.Model, split: str, batch_size: int) -> np.ndarray:
        return predict_probabilities(model, self.data.subset(split)[0], batch_size)

    def finetune_view(self, model: keras.Model, blocks: list[str], config: RunConfig) -> tuple[keras.Model, Any]:
        return model, self.batches  # the frozen stem's outputs change with augmentation: nothing to cache


def crop_fraction(config: RunConfig) -> float:
    """The centre crop used for every image of the run: the option, else the backbone's own."""
    return config.crop_fraction if config.crop_fraction is not None else backbones.get(config.backbone).crop_fraction


def load_data(config: RunConfig, image_size: int, progress: bool = True) -> PreparedData:
    common = dict(seed=config.seed, val_fraction=config.val_fraction, test_fraction=config.test_fraction, cache_dir=config.cache_dir)
    if config.data == "digits":
        return load_digits(image_size, **common)
    return prepare(config.data, image_size, crop_fraction=crop_fraction(config), progress=progress, **common)


def train(config: RunConfig, *, resume: bool = False, progress: bool = True, console: Console | None = None) -> Run:
    """Run the whole recipe for ``config`` and return the finished `Run` (its folder is complete on return)."""
    if config.task == "text":
        from shoulders.text.recipe import train_text

        return train_text(config, resume=resume, progress=progress, console=console)
    console = console or Console(stderr=True)
    folder, config, spec, started = start_run(config, resume)
    image_size = backbones.image_shape(spec, config.image_size)[0]
    weights = None if config.strategy == "scratch" else config.weights
    keras.utils.set_random_seed(config.seed)
    with ThreadPoolExecutor(1) as pool:  # decoding (in C, GIL released) overlaps building the backbone
        pending = pool.submit(load_data, config, image_size, progress)
        body = backbones.body(config.backbone, image_size, weights)
        # the frozen backbone's inference form, for phase 1's one pass of features, while decoding goes on
        folded = spec.inference_body(body) if _features_first(config) and spec.inference_body else None
        data = pending.result()
    folder.write_data(data)
    if not resume:
        folder.write_config(config, extra={"image_size_used": image_size, "crop_fraction_used": crop_fraction(config)})
    model = build_classifier(
        config.backbone,
        len(data.classes),
        image_size=image_size,
        weights=weights,
        augmentation=config.augmentation if config.augment else None,
        dropout=config.dropout,
        seed=config.seed,
        frozen_statistics=config.strategy != "scratch",
        backbone_body=body,
    )
    return run_recipe(model, spec, config, ImageInputs(data, spec, folded), folder, started, {"image_size": image_size}, progress, console)


def start_run(config: RunConfig, resume: bool) -> tuple[RunFolder, RunConfig, backbones.BackboneSpec, float]:
    """The run folder (new, or the interrupted one with its saved config), and a backbone of the task's kind
    (checked before a new folder is made, so a refused run leaves nothing behind)."""
    if not resume:
        _backbone_for_task(config)
    folder = open_folder(config, resume)
    config = RunConfig.from_dict(folder.read_config()) if resume else config
    return folder, config, _backbone_for_task(config), time.perf_counter()


def _backbone_for_task(config: RunConfig) -> backbones.BackboneSpec:
    spec = backbones.get(config.backbone)
    if spec.kind != config.task:
        hint = f", or pass --task {spec.kind}" if config.task == "image" else ""
        article = "an" if spec.kind == "image" else "a"
        raise ValueError(
            f"{config.backbone} is {article} {spec.kind} backbone; for --task {config.task} use one of "
            f"{', '.join(backbones.names(config.task))}{hint}"
        )
    return spec


def run_recipe(model, spec, config, inputs: TaskInputs, folder: RunFolder, started: float, facts: dict, progress, console) -> Run:
    """The task-independent part: the strategy's phases, the honest test, the run folder, the lineage."""
    train_started = time.perf_counter()
    phase1, phase2, details = _run_strategy(model, spec, config, inputs, folder, progress, console)
    train_seconds = time.perf_counter() - train_started
    metrics = _evaluate(model, inputs, config, phase1.features)
    metrics.update(
        details,
        train_seconds=round(train_seconds, 2),
        total_seconds=round(time.perf_counter() - started, 2),
        trainable_params_phase1=phase1.trainable_params,
        trainable_params_phase2=phase2.trainable_params,
        total_params=int(model.count_params()),
        epochs_phase1=phase1.epochs_run,
        epochs_phase2=max(0, phase2.epochs_run - phase1.epochs_run),
        backbone=config.backbone,
        strategy=config.strategy,
        task=config.task,
        data_fingerprint=inputs.data.fingerprint,
        weights_sha256=details.get("weights_sha256", ""),
        **facts,
    )
    folder.finish(model, phase1.history + phase2.history, metrics)
    publish_run(folder.path, console)  # report.html + MLflow lineage; failures are reported, never fatal
    return Run.load(folder.path)


def open_folder(config: RunConfig, resume: bool) -> RunFolder:
    if not resume:
        return RunFolder.create(Path(config.out) if config.out else new_run_path(config.backbone))
    if not config.out:
        raise ResumeError("--resume needs --out RUN_FOLDER: the folder of the interrupted run")
    folder = RunFolder(Path(config.out))
    if not (folder.path / "config.json").exists():
        raise ResumeError(f"{folder.path} holds no config.json: nothing to resume. Start a new run without --resume.")
    if (folder.path / "metrics.json").exists():
        raise ResumeError(f"{folder.path} already finished (metrics.json exists): nothing to resume.")
    return folder


def _run_strategy(model, spec, config, inputs, folder, progress, console) -> tuple[PhaseResult, PhaseResult, dict]:
    details: dict = {
        "lr_phase1": config.lr,
        "lr_phase2": None,
        "phase2_start_epoch": None,
        "unfrozen_blocks": [],
        "weights_sha256": _weights_sha(config),
    }
    phase1, phase2 = PhaseResult(), PhaseResult()
    if config.strategy in ("two-phase", "feature-extraction"):
        phase1 = _phase1(model, config, inputs, folder, progress, console)
    if _has_phase2(config):
        blocks, depth = phases.unfreeze_top(model, spec, config.unfreeze)
        multipliers = phases.layer_multipliers(model, spec, depth, config.layer_decay) if config.layer_decay else None
        guardrails.assert_batchnorm_frozen(model)
        guardrails.assert_lr_lower(config.lr, config.finetune_lr)
        details.update(lr_phase2=config.finetune_lr, phase2_start_epoch=phase1.epochs_run, unfrozen_blocks=blocks)
        details["frozen_layers"] = phases.frozen_layer_count(model)
        fitted, batches = inputs.finetune_view(model, blocks, config)
        phase2 = _fit_batches(
            fitted, config, batches, folder, "phase2", config.finetune_lr, phase1.epochs_run, config.epochs_finetune,
            progress, console, multipliers,
        )
    elif config.strategy in ("full", "scratch"):
        phases.unfreeze_all(model, freeze_batchnorm=config.strategy == "full")
        lr = config.finetune_lr if config.strategy == "full" else config.scratch_lr
        details.update(lr_phase1=lr, frozen_layers=phases.frozen_layer_count(model))
        phase1 = _fit_batches(
            model, config, inputs.batches, folder, "phase1", lr, 0, config.epochs_head + config.epochs_finetune, progress, console
        )
    details.setdefault("frozen_layers", phases.frozen_layer_count(model))
    return phase1, phase2, details


def _has_phase2(config: RunConfig) -> bool:
    """Top blocks are fine-tuned after the head (so the backbone does not stay frozen)."""
    return config.strategy == "two-phase" and config.epochs_finetune > 0


def _features_first(config: RunConfig) -> bool:
    """Phase 1 trains the head on features computed once (no augmentation upstream of the backbone)."""
    return config.strategy in ("two-phase", "feature-extraction") and not config.augment


def _weights_sha(config: RunConfig) -> str:
    return "" if config.strategy == "scratch" else backbones.weights_sha256(config.backbone, config.weights)


def _phase1(model, config, inputs, folder, progress, console) -> PhaseResult:
    """Head only, backbone frozen. Without augmentation the backbone's features are computed once."""
    state = folder.state()
    if state.get("phase1_done"):
        model.load_weights(folder.state_path / "phase1.weights.h5")
        phases.freeze_backbone(model)
        phases.compile_model(model, config.lr)
        return PhaseResult(state["phase1_epochs"], folder.phase_history("phase1"), phases.trainable_params(model))
    phases.freeze_backbone(model)
    phases.compile_model(model, config.lr)
    guardrails.assert_head_only(model, HEAD_LAYERS)
    if not _features_first(config):
        result = _fit_batches(model, config, inputs.batches, folder, "phase1", config.lr, 0, config.epochs_head, progress, console)
    else:
        result = _fit_cached_features(model, config, inputs, folder, progress, console)
    if _has_phase2(config):  # a resumed run starts phase 2 from here
        save_weights(model, folder.state_path / "phase1.weights.h5")
        folder.update_state(phase1_done=True, phase1_epochs=result.epochs_run)
    return result


def _fit_cached_features(model, config, inputs, folder, progress, console) -> PhaseResult:
    backbone_stays_frozen = not _has_phase2(config)
    splits = ("train", "val", "test") if backbone_stays_frozen else ("train", "val")
    features = FeaturePath.compute(model, config, inputs, splits)
    head = features.head
    phases.compile_model(head, config.lr)
    labels = inputs.data.labels
    result = _fit(
        head,
        (features.cached["train"], labels[inputs.data.splits["train"]]),
        (features.cached["val"], labels[inputs.data.splits["val"]]),
        folder, "phase1", 0, config.epochs_head, config, progress, console,
    )
    model.get_layer("logits").set_weights(head.get_layer("logits").get_weights())
    result.trainable_params = phases.trainable_params(head)
    result.features = features if backbone_stays_frozen else None
    return result


def _fit_batches(model, config, batches, folder, phase, lr, initial_epoch, epochs, progress, console, multipliers=None) -> PhaseResult:
    """``batches(split, batch_size, shuffle, seed)`` gives the (inputs, labels) batches ``model`` trains on."""
    phases.compile_model(model, lr, multipliers)
    train = batches("train", config.batch_size, shuffle=True, seed=config.seed + initial_epoch)
    val = batches("val", config.batch_size)
    result = _fit(model, train, val, folder, phase, initial_epoch, epochs, config, progress, console)
    result.trainable_params = phases.trainable_params(model)
    return result


def _fit(model, train, validation, folder, phase, initial_epoch, epochs, config, progress, console) -> PhaseResult:
    """One phase of ``fit``, guarded, with early stopping on val loss and the best weights restored.

    Training on images is resumable (state on disk after every epoch). A head on cached features
    trains in seconds, so it keeps its best weights in memory: after a kill it simply runs again.
    """
    guardrails.assert_compiled_for_current_trainables(model)
    on_features = isinstance(train, tuple)
    if on_features:
        stopper = keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
        resume_callbacks = [FeatureValidation(*validation), stopper]
        validation = None
    else:
        state_dir = folder.state_path / phase
        stopper = ResumableEarlyStopping(state_dir, config.patience)
        backup = keras.callbacks.BackupAndRestore(str(state_dir / "backup"), double_checkpoint=True)
        resume_callbacks = [stopper, backup]
    # Order matters for a kill between callbacks: the epoch is logged before it is backed up, so at
    # worst an epoch is re-run (its log line replaced), never skipped.
    first = resume_callbacks[:1] if on_features else []  # FeatureValidation adds val_* before anyone reads logs
    callbacks = [
        *first,
        folder.epoch_logger(phase),
        *resume_callbacks[len(first):],
        RichProgress(phase, initial_epoch + epochs, console, enabled=progress),
    ]
    x, y = train if on_features else (train, None)
    model.fit(
        x,
        y,
        batch_size=config.batch_size if on_features else None,
        shuffle=True,
        validation_data=validation,
        initial_epoch=initial_epoch,
        epochs=initial_epoch + epochs,
        callbacks=callbacks,
        verbose=0,
    )
    if not on_features:
        stopper.restore_best()
    return PhaseResult(folder.last_epoch(phase, initial_epoch), folder.phase_history(phase))


def _evaluate(model, inputs: TaskInputs, config: RunConfig, features: FeaturePath | None) -> dict:
    """Test metrics (the headline) and validation accuracy, with the final model's function."""
    data = inputs.data
    metrics: dict = {}
    for split in ("test", "val"):
        labels = data.labels[data.splits[split]]
        if features is not None:
            probabilities = features.probabilities(split)
        else:
            probabilities = inputs.probabilities(model, split, config.batch_size)
        result = classification_metrics(labels, probabilities, data.classes)
        metrics[f"{split}_accuracy"] = result["accuracy"]
        if split == "test":
            metrics.update(test=result, test_macro_f1=result["macro_f1"])
            metrics["test_predictions"] = _predictions(data, probabilities)
    return metrics


def predict_probabilities(model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    if len(images) == 0:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    logits = model.predict(ArrayBatches(images, np.zeros(len(images)), batch_size), verbose=0)
    return softmax(np.asarray(logits))


def _predictions(data, probabilities: np.ndarray) -> list[dict]:
    """Per test item: file (or row id), true and predicted class, confidence, and for texts the text
    itself (for the worst-errors gallery and audits)."""
    texts = getattr(data, "texts", None)
    predictions = []
    for row, p in zip(data.splits["test"], probabilities):
        entry = {
            "file": data.names[row],
            "true": data.classes[int(data.labels[row])],
            "predicted": data.classes[int(p.argmax())],
            "confidence": float(p.max()),
        }
        if texts is not None:
            entry["text"] = texts[row]
        predictions.append(entry)
    return predictions
