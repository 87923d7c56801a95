"""Tests for the deterministic synthetic MNIST-format digits."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twinrun.record.runs import RunDirError
from twinrun.trainers import synthetic
from twinrun.trainers.synthetic import generate_digits, write_idx_images, write_idx_labels, write_mnist_raw

# sha256 of images.tobytes() + labels.tobytes() for generate_digits(64, seed=0). This is the cross-machine
# byte-stability check: it must not change with the platform, the CPU or the numpy version. Changing the
# generator on purpose changes it: then bump data.SYNTHETIC_VERSION too, since cached sets go stale.
GOLDEN_SHA256 = "8861c79b9d9e32a00b9ede088c472f542fb2f7c94715331ae69f5622192229f5"
RAW_NAMES = {
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
}


def _digest(images: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


def test_shapes_dtypes_and_ranges() -> None:
    images, labels = generate_digits(50, seed=3)
    assert images.shape == (50, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (50,) and labels.dtype == np.uint8
    assert labels.max() <= 9
    assert images.max() == 255 and images.min() == 0  # solid ink cores on a black background, like MNIST
    empty_images, empty_labels = generate_digits(0, seed=3)
    assert empty_images.shape == (0, 28, 28) and empty_labels.shape == (0,)
    with pytest.raises(ValueError):
        generate_digits(-1, seed=3)


def test_deterministic_and_seed_sensitive() -> None:
    a_images, a_labels = generate_digits(40, seed=11)
    b_images, b_labels = generate_digits(40, seed=11)
    assert np.array_equal(a_images, b_images) and np.array_equal(a_labels, b_labels)
    c_images, _ = generate_digits(40, seed=12)
    assert not np.array_equal(a_images, c_images)
    d_images, _ = generate_digits(40, seed=-11)  # negative seeds are valid and distinct
    assert not np.array_equal(a_images, d_images)


def test_golden_hash_is_byte_stable() -> None:
    assert _digest(*generate_digits(64, seed=0)) == GOLDEN_SHA256
    assert _digest(*generate_digits(64, seed=1)) != GOLDEN_SHA256  # negative control: the hash sees the seed


def test_prefix_stability_and_chunk_independence(monkeypatch: pytest.MonkeyPatch) -> None:
    long_images, long_labels = generate_digits(100, seed=5)
    short_images, short_labels = generate_digits(10, seed=5)
    assert np.array_equal(long_images[:10], short_images) and np.array_equal(long_labels[:10], short_labels)
    assert not np.array_equal(long_images[10:20], short_images)  # negative control: samples differ
    monkeypatch.setattr(synthetic, "_CHUNK", 7)  # many chunk boundaries, uneven last chunk
    chunked_images, chunked_labels = generate_digits(100, seed=5)
    assert np.array_equal(chunked_images, long_images) and np.array_equal(chunked_labels, long_labels)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(-(2**70), 2**70), short=st.integers(0, 12), extra=st.integers(1, 12))
def test_prefix_property(seed: int, short: int, extra: int) -> None:
    long_images, long_labels = generate_digits(short + extra, seed)
    short_images, short_labels = generate_digits(short, seed)
    assert np.array_equal(long_images[:short], short_images)
    assert np.array_equal(long_labels[:short], short_labels)


def test_labels_cover_all_classes_roughly_balanced() -> None:
    _, labels = generate_digits(2000, seed=0)
    counts = np.bincount(labels, minlength=10)
    assert counts.min() >= 150 and counts.max() <= 250, counts  # 200 expected per class


def test_images_look_like_ink_on_black() -> None:
    images, _ = generate_digits(300, seed=2)
    ink = images > 127
    per_image = ink.mean(axis=(1, 2))
    assert per_image.min() > 0.03, "a blank image"  # every digit has visible strokes
    assert per_image.max() < 0.35, "a saturated image"
    assert 0.07 < per_image.mean() < 0.2  # MNIST: about 0.13 of pixels are > 127
    # Like MNIST the digit sits in the middle: the outer 2-pixel frame is nearly empty.
    frame = np.ones((28, 28), dtype=bool)
    frame[2:-2, 2:-2] = False
    assert ink[:, frame].mean() < 0.01 < ink[:, ~frame].mean()


def test_classes_are_distinguishable() -> None:
    def centroid_recall(train_labels: np.ndarray) -> np.ndarray:
        centroids = np.stack([train[train_labels == d].mean(axis=0) for d in range(10)])
        predicted = ((test[:, None] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
        return np.array([(predicted[test_labels == d] == d).mean() for d in range(10)])

    train_images, labels = generate_digits(1000, seed=4)
    test_images, test_labels = generate_digits(500, seed=5)
    train, test = train_images.reshape(1000, -1) / 255, test_images.reshape(500, -1) / 255
    # Even a nearest-class-mean classifier separates every class (about 0.8 overall, like on MNIST),
    # so no two templates are the same (e.g. 1/7, 4/9) and a CNN has something to learn.
    recall = centroid_recall(labels)
    assert recall.min() > 0.4 and recall.mean() > 0.65, recall
    shuffled = np.random.default_rng(0).permutation(labels)  # negative control: labels carry the signal
    assert centroid_recall(shuffled).mean() < 0.3


def test_idx_files_read_by_torchvision(tmp_path: Path) -> None:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    images, labels = generate_digits(20, seed=8)
    write_idx_images(tmp_path / "imgs", images)
    write_idx_labels(tmp_path / "lbls", labels)
    assert (tmp_path / "imgs").read_bytes()[:16] == bytes.fromhex("00000803 00000014 0000001c 0000001c")
    assert (tmp_path / "lbls").read_bytes()[:8] == bytes.fromhex("00000801 00000014")
    assert np.array_equal(read_image_file(str(tmp_path / "imgs")).numpy(), images)
    assert np.array_equal(read_label_file(str(tmp_path / "lbls")).numpy(), labels)
    other, _ = generate_digits(20, seed=9)
    assert not np.array_equal(read_image_file(str(tmp_path / "imgs")).numpy(), other)


def test_idx_writers_reject_wrong_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_idx_images(tmp_path / "x", np.zeros((2, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError):
        write_idx_labels(tmp_path / "y", np.zeros((2, 1), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_mnist_raw_loads_as_torchvision_mnist(tmp_path: Path) -> None:
    from torchvision.datasets import MNIST

    write_mnist_raw(tmp_path / "MNIST" / "raw", train_count=30, test_count=12, seed=0)
    assert {p.name for p in (tmp_path / "MNIST" / "raw").iterdir()} == RAW_NAMES  # no temp files left
    train = MNIST(str(tmp_path), train=True, download=False)
    test = MNIST(str(tmp_path), train=False, download=False)
    assert len(train) == 30 and len(test) == 12
    assert str(train.data.dtype) == "torch.uint8" and tuple(train.data.shape[1:]) == (28, 28)
    assert set(train.targets.tolist()) <= set(range(10))
    # Train and test come from different derived seeds: no test image appears in train.
    train_rows = {bytes(row) for row in train.data.numpy().reshape(30, -1)}
    assert not any(bytes(row) in train_rows for row in test.data.numpy().reshape(12, -1))
    assert bytes(train.data.numpy()[0].reshape(-1)) in train_rows  # negative control for the lookup
    # Deterministic files: a second write gives the same bytes; another seed does not.
    first = (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").read_bytes()
    write_mnist_raw(tmp_path / "again", 30, 12, seed=0)
    write_mnist_raw(tmp_path / "other", 30, 12, seed=1)
    assert (tmp_path / "again" / "train-images-idx3-ubyte").read_bytes() == first
    assert (tmp_path / "other" / "train-images-idx3-ubyte").read_bytes() != first


def test_failed_write_leaves_neither_temp_nor_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, _ = generate_digits(3, seed=0)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(RunDirError, match=r"cannot write .*train-images-idx3-ubyte: disk full"):
        write_idx_images(tmp_path / "train-images-idx3-ubyte", images)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    write_idx_images(tmp_path / "train-images-idx3-ubyte", images)  # control: the same write succeeds
    assert [p.name for p in tmp_path.iterdir()] == ["train-images-idx3-ubyte"]
