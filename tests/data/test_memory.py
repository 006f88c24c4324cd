"""A run whose decoded images or batch activations cannot fit in memory is refused before any work."""

import pytest

import shoulders
from shoulders.data import memory
from shoulders.data.memory import MemoryNeedError, check_batch_fits, check_cache_fits


def test_the_estimates_count_bytes():
    assert memory.cache_bytes(10, (224, 224)) == 10 * 224 * 224 * 3
    assert memory.activation_bytes(32, (224, 224)) == 32 * 224 * 224 * 3 * 4 * memory.ACTIVATION_FACTOR
    assert memory.available_memory() is None or memory.available_memory() > 0


def test_a_batch_that_cannot_fit_names_the_option_and_the_need():
    with pytest.raises(MemoryNeedError, match=r"^--image-size 100000 needs about .* TB .* one batch of 32 .* GB is available"):
        check_batch_fits(32, (100_000, 100_000), available=8 * 10**9)
    check_batch_fits(32, (224, 224), available=8 * 10**9)


def test_a_cache_that_cannot_fit_names_the_option_and_the_image_count():
    with pytest.raises(MemoryNeedError, match=r"^--image-size 4000 needs 4.8 GB .*100 images of 4000x4000x3"):
        check_cache_fits(100, (4000, 4000), available=10**9)


def test_train_refuses_a_huge_image_size_up_front(colour_folder, cache_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(MemoryNeedError, match="--image-size 100000"):
        shoulders.train(colour_folder, image_size=100_000, out=out, progress=False)
    assert not out.exists() and not cache_dir.exists()  # refused before a folder or a cache file was made


def test_train_refuses_images_whose_cache_cannot_fit(colour_folder, cache_dir, tmp_path, monkeypatch):
    # room for a batch's activations, not for the 36 decoded images
    monkeypatch.setattr(memory, "available_memory", lambda: memory.activation_bytes(8, (64, 64)) + 1)
    monkeypatch.setattr(memory, "cache_bytes", lambda count, size: 10 * memory.activation_bytes(8, size))
    out = tmp_path / "run"
    with pytest.raises(MemoryNeedError, match="for the decoded images \\(36 images of 64x64x3"):
        shoulders.train(colour_folder, image_size=64, batch_size=8, out=out, progress=False)
    assert not out.exists()
