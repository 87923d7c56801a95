"""Build an MNIST root from the 10,000 real test digits in ``../shared/data/mnist-t10k``.

The developers' machines carry the real MNIST test split (not the 60,000-image training split). This
splits it into our own train (first 8,000) and test (last 2,000) IDX files under ``ROOT/MNIST/raw/``,
which ``torchvision.datasets.MNIST(ROOT, download=False)`` — and so ``data=mnist data.root=ROOT`` —
accepts. Never required by the project: callers skip when the files are absent.

    python -m benchmarks.mnist_t10k ROOT
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
from filelock import FileLock

from twinrun.trainers.synthetic import write_idx_images, write_idx_labels

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist-t10k"
TRAIN_COUNT = 8000


def available(shared: Path = SHARED) -> bool:
    return (shared / "t10k-images-idx3-ubyte.gz").is_file() and (
        shared / "t10k-labels-idx1-ubyte.gz"
    ).is_file()


def build_root(root: Path, shared: Path = SHARED) -> Path:
    """Write ``root/MNIST/raw/{train,t10k}-*-ubyte`` (8,000 / 2,000 real digits); idempotent and locked."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    with FileLock(str(Path(root) / ".mnist-t10k.lock")):
        if (raw / "t10k-labels-idx1-ubyte").exists():
            return Path(root)
        images = np.frombuffer(
            gzip.decompress((shared / "t10k-images-idx3-ubyte.gz").read_bytes()), np.uint8, offset=16
        )
        labels = np.frombuffer(
            gzip.decompress((shared / "t10k-labels-idx1-ubyte.gz").read_bytes()), np.uint8, offset=8
        )
        images = images.reshape(-1, 28, 28)
        write_idx_images(raw / "train-images-idx3-ubyte", images[:TRAIN_COUNT])
        write_idx_labels(raw / "train-labels-idx1-ubyte", labels[:TRAIN_COUNT])
        write_idx_images(raw / "t10k-images-idx3-ubyte", images[TRAIN_COUNT:])
        write_idx_labels(raw / "t10k-labels-idx1-ubyte", labels[TRAIN_COUNT:])
    return Path(root)


if __name__ == "__main__":
    if not available():
        sys.exit(f"mnist-t10k: {SHARED} is absent (it exists only on the developers' machines)")
    print(build_root(Path(sys.argv[1] if len(sys.argv) > 1 else "mnist-t10k-root")))
