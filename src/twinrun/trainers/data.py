"""Dataset sources and the in-memory batches the training loop consumes.

Every source ends up as MNIST-format IDX files read by ``torchvision.datasets.MNIST`` (or
``FashionMNIST``), is loaded once into tensors and then indexed a whole batch at a time: no PIL
conversion per sample, which is what makes the course script's data path slow.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler

from twinrun.config import ConfigError
from twinrun.errors import TwinrunError
from twinrun.record.determinism import make_generator, seed_worker

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "mnist", "fashion_mnist")
SYNTHETIC_VERSION = 1  # bump when the generator's output changes, so stale caches are not reused
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class DataUnavailableError(TwinrunError, RuntimeError):
    """The dataset cannot be had (offline, missing files); the message names the way out."""


@dataclass(frozen=True)
class Split:
    """One split held in memory: images [N, 1, 28, 28] float32 in [0, 1], labels [N] int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def sha256(self) -> str:
        digest = hashlib.sha256(self.images.numpy().tobytes())
        digest.update(self.labels.numpy().tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class Datasets:
    name: str
    train: Split
    test: Split

    def fingerprint(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "train_samples": len(self.train),
            "test_samples": len(self.test),
            "train_sha256": self.train.sha256(),
            "test_sha256": self.test.sha256(),
        }


def load_datasets(data_cfg: Mapping[str, Any]) -> Datasets:
    """Prepare (under a file lock) and load the configured source, then take the requested subsets."""
    name = data_cfg["name"]
    if name not in SOURCES:
        raise DataUnavailableError(f"data={name} is unknown; choose one of {', '.join(SOURCES)}")
    root = Path(str(data_cfg["root"])).expanduser()
    train_n, test_n = _sample_count(data_cfg, "train"), _sample_count(data_cfg, "test")
    try:
        root.mkdir(parents=True, exist_ok=True)
        if name == "synthetic":
            dataset_root = _prepare_synthetic(root, data_cfg, train_n, test_n)
            dataset_cls: Any = _torchvision_class("mnist")
        else:
            dataset_root = root
            dataset_cls = _torchvision_class(name)
            _prepare_download(root, name, dataset_cls)
        return Datasets(
            name=name,
            train=_load_split(dataset_cls, dataset_root, train=True, limit=train_n),
            test=_load_split(dataset_cls, dataset_root, train=False, limit=test_n),
        )
    except OSError as exc:  # an unwritable or full data.root, an unreadable file in it
        where = exc.filename or root
        raise DataUnavailableError(
            f"data={name} cannot be prepared under data.root={root}: {where}: "
            f"{exc.strerror or type(exc).__name__}; point data.root at a writable directory"
        ) from None


def _sample_count(data_cfg: Mapping[str, Any], split: str) -> int | None:
    count = data_cfg.get(f"{split}_samples")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ConfigError(
            f"data.{split}_samples={count!r} is not usable: give a positive integer or null (all)"
        )
    return count


def _torchvision_class(name: str) -> Any:
    from twinrun.record.versions import import_torchvision

    datasets = import_torchvision("torchvision.datasets")  # a mismatched torch/torchvision: one line
    return datasets.FashionMNIST if name == "fashion_mnist" else datasets.MNIST


def _prepare_synthetic(root: Path, cfg: Mapping[str, Any], train_n: int | None, test_n: int | None) -> Path:
    from twinrun.trainers.synthetic import write_mnist_raw

    # Generation is prefix-stable (sample i depends only on the seed and i), so a small request can
    # generate a small file: its samples equal the first ones of the full-size set.
    n_train = min(train_n, cfg["train_size"]) if train_n else cfg["train_size"]
    n_test = min(test_n, cfg["test_size"]) if test_n else cfg["test_size"]
    seed = cfg["generator_seed"]
    dataset_root = root / f"synthetic-v{SYNTHETIC_VERSION}-seed{seed}-{n_train}x{n_test}"
    raw_dir = dataset_root / "MNIST" / "raw"
    with FileLock(str(root / ".synthetic.lock")):
        if not (raw_dir / "t10k-labels-idx1-ubyte").exists():
            log.debug("generating synthetic digits: %d train, %d test in %s", n_train, n_test, dataset_root)
            write_mnist_raw(raw_dir, n_train, n_test, seed)
    return dataset_root


def _prepare_download(root: Path, name: str, dataset_cls: Any) -> None:
    with FileLock(str(root / f".{name}.lock")):
        if name == "fashion_mnist":
            _seed_from_debian(root)
        try:
            dataset_cls(str(root), train=True, download=True)
        except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError when offline
            raise DataUnavailableError(
                f"data={name} is not under data.root={root} and could not be downloaded "
                f"({type(exc).__name__}); use data=synthetic to run offline, or point data.root at a "
                f"directory holding {dataset_cls.__name__}/raw"
            ) from None


def _seed_from_debian(root: Path) -> None:
    """Debian's dataset-fashion-mnist package ships the archives; copy them in instead of downloading."""
    raw = root / "FashionMNIST" / "raw"
    if not DEBIAN_FASHION_MNIST.is_dir() or (raw / "t10k-labels-idx1-ubyte").exists():
        return
    raw.mkdir(parents=True, exist_ok=True)
    for archive in DEBIAN_FASHION_MNIST.glob("*-ubyte.gz"):
        shutil.copy2(archive, raw / archive.name)


def _load_split(dataset_cls: Any, root: Path, *, train: bool, limit: int | None) -> Split:
    try:
        ds = dataset_cls(str(root), train=train, download=False)
    except RuntimeError as exc:
        raise DataUnavailableError(f"cannot read the dataset under {root}: {exc}") from None
    images, labels = ds.data, ds.targets  # uint8 [N, 28, 28], int64 [N]
    if limit is not None:
        if limit > len(labels):
            split = "train" if train else "test"
            raise DataUnavailableError(
                f"data.{split}_samples={limit} is out of range: the {split} split has {len(labels)} samples"
            )
        images, labels = images[:limit], labels[:limit]
    # Converted once for the whole split; the training loop then only indexes.
    return Split(images=images.unsqueeze(1).float().div_(255.0), labels=labels.long().clone())


class BatchIndexedDataset(Dataset):
    """A split indexed by a whole list of sample indices at once: ``ds[[3, 1, 2]]`` is one batch."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return self.split.images[idx], self.split.labels[idx], idx  # [B,1,28,28], [B], [B]


class EpochBatches(Sampler[list[int]]):
    """The batches of one epoch, optionally starting after ``start_batch`` batches (resume).

    Order comes from torch's ``DistributedSampler`` seeded with ``seed`` and ``set_epoch(epoch)``: it
    depends on (seed, epoch, rank, world size) only, never on global RNG state, so a resumed run
    continues with exactly the batches the uninterrupted run would have seen.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        *,
        seed: int,
        epoch: int,
        shuffle: bool = True,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        sampler = DistributedSampler(
            range(length), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        sampler.set_epoch(epoch)
        self.batches = BatchSampler(sampler, batch_size, drop_last=False)
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(self.batches), self.start_batch, None)

    def __len__(self) -> int:
        return max(len(self.batches) - self.start_batch, 0)


class InProcessBatches:
    """What a ``DataLoader`` with ``num_workers=0`` yields here, without its per-batch machinery.

    The data already sits in memory and each batch is one indexing operation, so the DataLoader's
    fetcher and conversion cost more than the batch itself (about 0.2 ms a step, measured).
    """

    def __init__(self, dataset: BatchIndexedDataset, batches: EpochBatches) -> None:
        self.dataset, self.batches = dataset, batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        return (self.dataset[indices] for indices in self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def make_loader(
    split: Split,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    num_workers: int = 0,
    shuffle: bool = True,
    start_batch: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader | InProcessBatches:
    """Batches of ``(images, labels, sample_indices)`` in the order seeded by (seed, epoch).

    With ``num_workers=0`` the batches are indexed in-process (:class:`InProcessBatches`); otherwise a
    ``DataLoader`` with seeded workers yields exactly the same batches.
    """
    batches = EpochBatches(
        len(split),
        batch_size,
        seed=seed,
        epoch=epoch,
        shuffle=shuffle,
        start_batch=start_batch,
        rank=rank,
        world_size=world_size,
    )
    if num_workers == 0:
        return InProcessBatches(BatchIndexedDataset(split), batches)
    return DataLoader(
        BatchIndexedDataset(split),
        sampler=batches,
        batch_size=None,  # the sampler already yields whole batches
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        # An explicit generator keeps the loader from drawing its worker base seed from the global
        # torch RNG (which would shift dropout and VAE noise whenever num_workers changes).
        generator=make_generator(seed, "loader", epoch),
    )
