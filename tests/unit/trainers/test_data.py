import urllib.error

import pytest
import torch

from twinrun.config import ConfigError
from twinrun.record.determinism import seed_everything
from twinrun.trainers import data


def synthetic_cfg(root, train=64, test=32):
    return {
        "name": "synthetic",
        "root": str(root),
        "train_samples": train,
        "test_samples": test,
        "train_size": 60000,
        "test_size": 10000,
        "generator_seed": 2024,
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> data.Datasets:
    return data.load_datasets(synthetic_cfg(tmp_path_factory.mktemp("data"), 96, 32))


def test_synthetic_subsets_are_in_memory_tensors(small: data.Datasets) -> None:
    assert small.train.images.shape == (96, 1, 28, 28) and small.train.images.dtype == torch.float32
    assert small.train.labels.shape == (96,) and small.train.labels.dtype == torch.int64
    assert small.train.images.min() >= 0.0 and small.train.images.max() <= 1.0
    assert len(small.test) == 32


def test_subset_is_a_prefix_of_a_bigger_request(small: data.Datasets, tmp_path) -> None:
    bigger = data.load_datasets(synthetic_cfg(tmp_path, 128, 40))
    assert torch.equal(bigger.train.images[:96], small.train.images)
    assert torch.equal(bigger.test.labels[:32], small.test.labels)
    assert bigger.fingerprint()["train_sha256"] != small.fingerprint()["train_sha256"]


def test_fingerprint_is_stable(small: data.Datasets, tmp_path) -> None:
    again = data.load_datasets(synthetic_cfg(tmp_path, 96, 32))
    assert again.fingerprint() == small.fingerprint()


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_unusable_sample_counts_are_config_errors(tmp_path, n) -> None:
    with pytest.raises(ConfigError, match="train_samples"):
        data.load_datasets({**synthetic_cfg(tmp_path), "train_samples": n})


def test_subset_larger_than_the_split_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(data.DataUnavailableError, match="test_samples=90 is out of range"):
        data.load_datasets({**synthetic_cfg(tmp_path, 10, 90), "test_size": 50})


def test_unknown_source(tmp_path) -> None:
    with pytest.raises(data.DataUnavailableError, match="synthetic"):
        data.load_datasets({"name": "cifar", "root": str(tmp_path)})


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_offline_download_names_the_way_out(tmp_path, monkeypatch, name: str) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torchvision.datasets.utils.urlopen", offline, raising=False)
    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", offline)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_datasets({"name": name, "root": str(tmp_path), "train_samples": None, "test_samples": None})
    message = str(error.value)
    assert "data=synthetic" in message and "data.root" in message and "\n" not in message


def batches(loader) -> list[list[int]]:
    return [indices.tolist() for _, _, indices in loader]


def test_epoch_order_depends_on_seed_and_epoch_only(small: data.Datasets) -> None:
    order = batches(data.make_loader(small.train, 32, seed=1, epoch=1))
    assert batches(data.make_loader(small.train, 32, seed=1, epoch=1)) == order
    assert batches(data.make_loader(small.train, 32, seed=1, epoch=2)) != order
    assert batches(data.make_loader(small.train, 32, seed=2, epoch=1)) != order
    assert sorted(i for b in order for i in b) == list(range(96))


def test_partial_last_batch_and_resume_offset(small: data.Datasets) -> None:
    order = batches(data.make_loader(small.train, 40, seed=3, epoch=1))
    assert [len(b) for b in order] == [40, 40, 16]
    assert batches(data.make_loader(small.train, 40, seed=3, epoch=1, start_batch=1)) == order[1:]
    assert len(data.make_loader(small.train, 40, seed=3, epoch=1, start_batch=2)) == 1


def test_iterating_the_loader_leaves_global_rng_alone(small: data.Datasets) -> None:
    seed_everything(0)
    before = torch.get_rng_state()
    batches(data.make_loader(small.train, 32, seed=1, epoch=1))
    assert torch.equal(torch.get_rng_state(), before)


def test_workers_give_the_same_batches(small: data.Datasets) -> None:
    with_workers = data.make_loader(small.train, 32, seed=4, epoch=1, num_workers=2)
    images = [x for x, _, _ in with_workers]
    plain = [x for x, _, _ in data.make_loader(small.train, 32, seed=4, epoch=1)]
    assert all(torch.equal(a, b) for a, b in zip(images, plain, strict=True))
    other_seed = [x for x, _, _ in data.make_loader(small.train, 32, seed=5, epoch=1, num_workers=2)]
    assert not all(torch.equal(a, b) for a, b in zip(images, other_seed, strict=True))  # negative control


def test_ranks_split_the_epoch(small: data.Datasets) -> None:
    ranks = [
        {
            i
            for b in batches(data.make_loader(small.train, 16, seed=1, epoch=1, rank=r, world_size=2))
            for i in b
        }
        for r in (0, 1)
    ]
    assert not ranks[0] & ranks[1] and ranks[0] | ranks[1] == set(range(96))


def test_a_data_root_that_cannot_be_written_is_one_line(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(data.DataUnavailableError, match=r"data.root=.*file/root: .*Not a directory") as error:
        data.load_datasets(synthetic_cfg(tmp_path / "file" / "root"))
    assert "\n" not in str(error.value)
    assert len(data.load_datasets(synthetic_cfg(tmp_path / "root")).train) == 64  # control: a usable root
