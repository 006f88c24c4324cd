"""`FineTuner`: the two-phase recipe as one object (fastai's ``Learner``, Keras' ``Trainer``).

It holds what every step needs (the model, its backbone's spec, the config, the task's inputs, the run
folder being written and the progress display) and offers the recipe's verbs: ``fit_head()`` (phase 1,
backbone frozen), ``fit_top()`` (phase 2, top blocks unfrozen at the lower LR), ``fit_all()`` (the
``full`` and ``scratch`` strategies), ``evaluate()`` (the honest test) and ``run()`` (all of it, then the
run folder's final files). Task recipes (`shoulders.image`, `shoulders.text`) build the model and the
inputs; nothing here knows pixels from tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np
from rich.console import Console

from shoulders import backbones
from shoulders.config import RunConfig
from shoulders.errors import ShouldersError
from shoulders.io import save_weights
from shoulders.runs.writer import RunFolder
from shoulders.training import guardrails, phases
from shoulders.training.callbacks import DivergenceStop, FeatureValidation, ModelValidation, ResumableEarlyStopping, RichProgress
from shoulders.training.compute import Compute
from shoulders.training.metrics import classification_metrics, softmax
from shoulders.training.model import HEAD_LAYERS, head_model


class BackboneTaskError(ShouldersError, ValueError):
    """The backbone is of another task's kind (an image backbone for texts, or the reverse)."""


class TrainingDivergedError(ShouldersError, FloatingPointError):
    """The loss became NaN (or exploded) before any epoch gave weights worth keeping."""


class TaskInputs(Protocol):
    """What the fine-tuner needs from a task's data (images or texts), and nothing else."""

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

    def reference(self, test_probabilities: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """The arrays later steps need, by `layout` file name (test inputs, calibration, thumbnails)."""


@dataclass
class Display:
    """Where progress goes, and whether there is any."""

    console: Console = field(default_factory=lambda: Console(stderr=True))
    enabled: bool = True


@dataclass
class PhaseResult:
    epochs_run: int = 0  # the epoch count at the end of the phase (numbering continues across phases)
    history: list[dict] = field(default_factory=list)
    trainable_params: int = 0
    diverged: dict | None = None  # where the loss became NaN or exploded (training stopped there)


@dataclass(frozen=True)
class Phase:
    """One ``fit``: its name in the history, LR, first epoch and epoch budget, per-variable LR multipliers."""

    name: str
    lr: float
    initial_epoch: int
    epochs: int
    multipliers: dict[str, float] | None = None


@dataclass
class FeaturePath:
    """The frozen backbone's features and the head trained on them: while the backbone stays frozen,
    ``head(features(x))`` is exactly the final model, so evaluation reuses the cached features."""

    head: keras.Model
    cached: dict[str, np.ndarray]

    @classmethod
    def compute(cls, model: keras.Model, config: RunConfig, inputs: TaskInputs, splits: tuple[str, ...]) -> FeaturePath:
        """Features of ``splits`` in one pass (split over the run's devices), from the cache when seen
        before; the head a float32 copy on one device (seconds of work)."""
        features = inputs.features(model, config, splits)
        bounds = np.cumsum([len(inputs.data.splits[split]) for split in splits])[:-1]
        with Compute.local():
            head = head_model(model)
        return cls(head, dict(zip(splits, np.split(features, bounds))))

    def probabilities(self, split: str) -> np.ndarray:
        kernel, bias = self.head.get_layer("logits").get_weights()  # dropout is the identity at inference
        return softmax(self.cached[split] @ kernel + bias)


def backbone_for_task(config: RunConfig) -> backbones.BackboneSpec:
    """The config's backbone, refused when it is of another task's kind."""
    spec = backbones.get(config.backbone)
    if spec.kind != config.task:
        hint = f", or pass --task {spec.kind}" if config.task == "image" else ""
        article = "an" if spec.kind == "image" else "a"
        raise BackboneTaskError(
            f"{config.backbone} is {article} {spec.kind} backbone; for --task {config.task} use one of "
            f"{', '.join(backbones.names(config.task))}{hint}"
        )
    return spec


def start_run(config: RunConfig, resume: bool) -> tuple[RunFolder, RunConfig, backbones.BackboneSpec, float]:
    """The run folder (new, or the interrupted one with its saved config), and a backbone of the task's kind
    (checked before a new folder is made, so a refused run leaves nothing behind)."""
    if not resume:
        backbone_for_task(config)
    folder, config = RunFolder.open(config, resume)
    return folder, config, backbone_for_task(config), time.perf_counter()


def weights_sha(config: RunConfig) -> str:
    return "" if config.strategy == "scratch" else backbones.weights_sha256(config.backbone, config.weights)


def has_phase2(config: RunConfig) -> bool:
    """Top blocks are fine-tuned after the head (so the backbone does not stay frozen)."""
    return config.strategy == "two-phase" and config.epochs_finetune > 0


def features_first(config: RunConfig) -> bool:
    """Phase 1 trains the head on features computed once (no augmentation upstream of the backbone)."""
    return config.strategy in ("two-phase", "feature-extraction") and not config.augment


@dataclass
class FineTuner:
    """One run's fine-tuning: the recipe's phases on ``model``, written into ``folder`` as they go."""

    model: keras.Model
    spec: backbones.BackboneSpec
    config: RunConfig
    inputs: TaskInputs
    folder: RunFolder
    display: Display = field(default_factory=Display)
    compute: Compute = field(default_factory=Compute)  # where it trains: devices, processes, precision
    features: FeaturePath | None = field(default=None, init=False)  # set while the backbone stays frozen
    details: dict = field(default_factory=dict, init=False)  # LRs, unfrozen blocks, frozen layers: for metrics

    def run(self, started: float, facts: dict) -> Path:
        """The strategy's phases, the honest test, the run folder's final files; returns the folder."""
        train_started = time.perf_counter()
        with self.compute.scope():
            phase1, phase2 = self.fine_tune()
        train_seconds = time.perf_counter() - train_started
        self.model = self.compute.portable(self.model)  # float32, one device: what is scored, saved and exported
        if self.compute.precision != "float32":
            self.features = None  # bfloat16 features are not the saved float32 model's: score the model itself
        self.compute.check_same_weights(self.model)
        metrics, test_probabilities = self.evaluate()
        metrics.update(
            self.details,
            train_seconds=round(train_seconds, 2),
            total_seconds=round(time.perf_counter() - started, 2),
            trainable_params_phase1=phase1.trainable_params,
            trainable_params_phase2=phase2.trainable_params,
            total_params=int(self.model.count_params()),
            epochs_phase1=phase1.epochs_run,
            epochs_phase2=max(0, phase2.epochs_run - phase1.epochs_run),
            backbone=self.config.backbone,
            strategy=self.config.strategy,
            task=self.config.task,
            data_fingerprint=self.inputs.data.fingerprint,
            **facts,
        )
        for name, arrays in self.inputs.reference(test_probabilities).items():
            self.folder.write_arrays(name, arrays)
        phases.plain_compile(self.model)
        self.folder.finish(self.model, phase1.history + phase2.history, metrics)
        return self.folder.path

    def fine_tune(self) -> tuple[PhaseResult, PhaseResult]:
        """The config's strategy: head then top blocks, head only, or everything at once."""
        config = self.config
        self.details = {
            "lr_phase1": config.lr, "lr_phase2": None, "phase2_start_epoch": None, "unfrozen_blocks": [],
            "weights_sha256": weights_sha(config),
        }
        phase1, phase2 = PhaseResult(), PhaseResult()
        if config.strategy in ("two-phase", "feature-extraction"):
            phase1 = self.fit_head()
            if has_phase2(config) and phase1.diverged is None:  # a diverged phase stops training at once
                phase2 = self.fit_top(phase1.epochs_run)
        else:  # full, scratch
            phase1 = self.fit_all()
        self.details.setdefault("frozen_layers", phases.frozen_layer_count(self.model))
        return phase1, phase2

    def fit_head(self) -> PhaseResult:
        """Phase 1: head only, backbone frozen. Without augmentation the backbone's features are computed once."""
        model, config, folder = self.model, self.config, self.folder
        state = folder.state()
        phases.freeze_backbone(model)
        if state.get("phase1_done"):  # a resumed run: phase 1 finished before the kill
            model.load_weights(folder.state_path / "phase1.weights.h5")
            phases.compile_model(model, config.lr)
            return PhaseResult(state["phase1_epochs"], folder.phase_history("phase1"), phases.trainable_params(model))
        phases.compile_model(model, config.lr)
        guardrails.assert_head_only(model, HEAD_LAYERS)
        if features_first(config):
            result = self._fit_cached_features()
        else:
            result = self._fit_batches(model, self.inputs.batches, Phase("phase1", config.lr, 0, config.epochs_head))
        if has_phase2(config):  # a resumed run starts phase 2 from here
            save_weights(model, folder.state_path / "phase1.weights.h5")
            folder.update_state(phase1_done=True, phase1_epochs=result.epochs_run)
        return result

    def fit_top(self, initial_epoch: int) -> PhaseResult:
        """Phase 2: the top blocks unfrozen (BatchNorm frozen), recompiled at the lower LR, epochs continued."""
        model, config = self.model, self.config
        blocks, depth = phases.unfreeze_top(model, self.spec, config.unfreeze)
        multipliers = phases.layer_multipliers(model, self.spec, depth, config.layer_decay) if config.layer_decay else None
        guardrails.assert_batchnorm_frozen(model)
        guardrails.assert_lr_lower(config.lr, config.finetune_lr)
        self.details.update(
            lr_phase2=config.finetune_lr, phase2_start_epoch=initial_epoch, unfrozen_blocks=blocks,
            frozen_layers=phases.frozen_layer_count(model),
        )
        fitted, batches = self.inputs.finetune_view(model, blocks, config)
        phase = Phase("phase2", config.finetune_lr, initial_epoch, config.epochs_finetune, multipliers)
        return self._fit_batches(fitted, batches, phase)

    def fit_all(self) -> PhaseResult:
        """Strategies ``full`` (pretrained, BatchNorm frozen, low LR) and ``scratch`` (random init): one phase."""
        config = self.config
        phases.unfreeze_all(self.model, freeze_batchnorm=config.strategy == "full")
        lr = config.finetune_lr if config.strategy == "full" else config.scratch_lr
        self.details.update(lr_phase1=lr, frozen_layers=phases.frozen_layer_count(self.model))
        phase = Phase("phase1", lr, 0, config.epochs_head + config.epochs_finetune)
        return self._fit_batches(self.model, self.inputs.batches, phase)

    def evaluate(self) -> tuple[dict, np.ndarray]:
        """Test metrics (the headline) and validation accuracy with the final model's function; and the
        test probabilities, which the run folder keeps as the reference for exports."""
        data = self.inputs.data
        metrics: dict = {}
        test_probabilities = np.zeros((0, len(data.classes)))
        for split in ("test", "val"):
            if self.features is not None:
                probabilities = self.features.probabilities(split)
            else:
                probabilities = self.inputs.probabilities(self.model, split, self.config.batch_size)
            result = classification_metrics(data.labels[data.splits[split]], probabilities, data.classes)
            metrics[f"{split}_accuracy"] = result["accuracy"]
            if split == "test":
                metrics.update(
                    test=result, test_accuracy_ci95=result["accuracy_ci95"], test_macro_f1=result["macro_f1"],
                    test_predictions=_predictions(data, probabilities),
                )
                test_probabilities = probabilities
        return metrics, test_probabilities

    def _fit_cached_features(self) -> PhaseResult:
        config, data = self.config, self.inputs.data
        backbone_stays_frozen = not has_phase2(config)
        splits = ("train", "val", "test") if backbone_stays_frozen else ("train", "val")
        features = FeaturePath.compute(self.model, config, self.inputs, splits)
        with Compute.local():  # the head on features: float32 on one device
            head = features.head
            phases.compile_model(head, config.lr)
            train = (features.cached["train"], data.labels[data.splits["train"]])
            validation = (features.cached["val"], data.labels[data.splits["val"]])
            result = self._fit(head, train, validation, Phase("phase1", config.lr, 0, config.epochs_head))
        trained = self.compute.broadcast(head.get_layer("logits").get_weights())  # every process: process 0's head
        head.get_layer("logits").set_weights(trained)
        self.model.get_layer("logits").set_weights(trained)
        result.trainable_params = phases.trainable_params(head)
        self.features = features if backbone_stays_frozen else None
        return result

    def _fit_batches(self, model: keras.Model, batches, phase: Phase) -> PhaseResult:
        """``batches(split, batch_size, shuffle, seed)`` gives the (inputs, labels) batches ``model`` trains on."""
        config = self.config
        train = batches("train", config.batch_size, shuffle=True, seed=config.seed + phase.initial_epoch)
        phases.compile_model(model, phase.lr, phase.multipliers, self.compute.steps_per_execution(len(train)))
        result = self._fit(model, train, batches("val", config.batch_size), phase)
        result.trainable_params = phases.trainable_params(model)
        return result

    def _fit(self, model: keras.Model, train, validation, phase: Phase) -> PhaseResult:
        """One phase of ``fit``, guarded, with early stopping on val loss and the best weights restored.

        Training on batches is resumable (state on disk after every epoch). A head on cached features
        trains in seconds, so it keeps its best weights in memory: after a kill it simply runs again.
        """
        guardrails.assert_compiled_for_current_trainables(model)
        on_features = isinstance(train, tuple)
        validator = self._validator(model, validation, on_features)
        stopper, callbacks = self._callbacks(phase, on_features, validator)
        divergence = DivergenceStop(phase.name)
        x, y = train if on_features else (train, None)
        model.fit(
            x,
            y,
            batch_size=self.config.batch_size if on_features else None,
            shuffle=True,
            validation_data=None if validator is not None else validation,
            initial_epoch=phase.initial_epoch,
            epochs=phase.initial_epoch + phase.epochs,
            callbacks=[divergence, *callbacks],
            verbose=0,
        )
        # the features' Keras EarlyStopping restored its best weights itself; a finite best is a kept epoch
        kept = stopper.restore_best() if not on_features else np.isfinite(stopper.best)
        result = PhaseResult(self.folder.last_epoch(phase.name, phase.initial_epoch), self.folder.phase_history(phase.name))
        if divergence.diverged is not None:
            result.diverged = self._diverged(divergence.diverged, phase, kept)
        return result

    def _diverged(self, where: dict, phase: Phase, kept: bool) -> dict:
        """Say where training diverged and which LR to lower; refuse the run when no epoch is worth keeping."""
        option = "--lr" if phase.name == "phase1" and self.config.strategy != "full" else "--lr-finetune"
        loss = "NaN" if not np.isfinite(where["loss"]) else f"{where['loss']:.4g} (exploded)"
        what = f"the loss became {loss} at {phase.name} epoch {where['epoch']}, batch {where['batch']}, at LR {phase.lr:g}"
        if not kept:
            raise TrainingDivergedError(
                f"training stopped: {what}, before any epoch gave usable weights. Lower {option} (e.g. {phase.lr / 10:g}) "
                "and train again; check the data for broken inputs if it still happens."
            )
        self.display.console.print(
            f"[yellow]warning:[/] training stopped: {what}. The best epoch's weights are kept and later phases skipped; "
            f"lower {option} (e.g. {phase.lr / 10:g}) to train further."
        )
        self.details["diverged"] = {**where, "lr": phase.lr}
        return where

    def _validator(self, model: keras.Model, validation, on_features: bool) -> keras.callbacks.Callback | None:
        """Who computes val_*: numpy on cached features; our padded, gathered predictions when the batch is
        split over devices (Keras' evaluate cannot take a last batch that does not split); else Keras."""
        if on_features:
            return FeatureValidation(*validation)
        if self.compute.distributed:
            data = self.inputs.data
            return ModelValidation(lambda: self.inputs.probabilities(model, "val", self.config.batch_size), data.labels[data.splits["val"]])
        return None

    def _callbacks(self, phase: Phase, on_features: bool, validator) -> tuple[Any, list[keras.callbacks.Callback]]:
        """(the early stopper, every callback in order). Order matters for a kill between callbacks: the
        epoch is logged before it is backed up, so at worst an epoch is re-run (its log line replaced),
        never skipped; the validator adds val_* before anyone reads the logs."""
        first: list[keras.callbacks.Callback] = [validator] if validator is not None else []
        if on_features:
            stopper = keras.callbacks.EarlyStopping(patience=self.config.patience, restore_best_weights=True)
            rest = [stopper]
        else:
            state_dir = self.folder.state_path / phase.name
            stopper = ResumableEarlyStopping(state_dir, self.config.patience)
            rest = [stopper, keras.callbacks.BackupAndRestore(str(state_dir / "backup"), double_checkpoint=True)]
        total = phase.initial_epoch + phase.epochs
        progress = RichProgress(phase.name, total, self.display.console, enabled=self.display.enabled)
        return stopper, [*first, self.folder.epoch_logger(phase.name), *rest, progress]


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


# Test rows kept in reference/test.npz: every test row of a small or mid-sized set, at most ~150 MB of
# 224 px images for a large one (metrics.json always scores the whole test split).
REFERENCE_LIMIT = 1000


def test_reference(data, probabilities: np.ndarray, inputs_of: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    """reference/test.npz: the first `REFERENCE_LIMIT` test rows' inputs (``inputs_of(rows)``: pixels or
    texts), labels, the model's probabilities and names, in test-split order (that of test_predictions)."""
    rows = data.splits["test"][:REFERENCE_LIMIT]
    return {
        "inputs": inputs_of(rows),
        "labels": np.asarray(data.labels[rows], dtype=np.int64),
        "probabilities": np.asarray(probabilities[: len(rows)], dtype=np.float32),
        "names": np.array([data.names[row] for row in rows], dtype=str),
    }
