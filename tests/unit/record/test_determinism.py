import os
import random

import numpy as np
import pytest
import torch

from twinrun.record import determinism as det


def draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1])
def test_seed_everything_repeats_every_rng(seed: int) -> None:
    det.seed_everything(seed)
    first = draws()
    det.seed_everything(seed)
    assert draws() == first


def test_different_seeds_give_different_draws() -> None:
    det.seed_everything(0)
    zero = draws()
    det.seed_everything(1)
    assert draws() != zero  # negative control: seed 0 is a real seed, not "unset"


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, True, "3", None])
def test_seed_everything_rejects_bad_seeds(bad: object) -> None:
    with pytest.raises(ValueError, match="seed must be"):
        det.seed_everything(bad)  # type: ignore[arg-type]


def test_draw_seed_in_range() -> None:
    seeds = {det.draw_seed() for _ in range(5)}
    assert all(0 <= s <= det.SEED_MAX for s in seeds)
    assert len(seeds) > 1


def test_derived_seed_is_stable_and_label_sensitive() -> None:
    # Golden value: derived seeds must not change across platforms or releases (data order depends on them).
    assert det.derived_seed(7, "shuffle", 1) == det.derived_seed(7, "shuffle", 1)
    assert det.derived_seed(0, "loader", 1) == 1092563814351985104
    assert det.derived_seed(7, "shuffle", 1) != det.derived_seed(7, "shuffle", 2)
    assert det.derived_seed(7, "shuffle", 1) < 2**63


def test_make_generator_does_not_touch_global_rng() -> None:
    det.seed_everything(3)
    before = torch.get_rng_state()
    a = torch.randperm(10, generator=det.make_generator(3, "x")).tolist()
    b = torch.randperm(10, generator=det.make_generator(3, "x")).tolist()
    assert a == b
    assert torch.equal(before, torch.get_rng_state())
    assert torch.randperm(10, generator=det.make_generator(3, "y")).tolist() != a


def test_deterministic_mode_flags() -> None:
    det.enable_deterministic_mode(True)
    flags = det.determinism_flags()
    assert flags["deterministic_algorithms"] is True
    assert flags["cudnn_benchmark"] is False
    assert flags["matmul_allow_tf32"] is False
    det.enable_deterministic_mode(False)
    assert det.determinism_flags()["deterministic_algorithms"] is False
    det.enable_deterministic_mode(True)


def test_worker_seeding_follows_torch_seed() -> None:
    torch.manual_seed(1234)
    det.seed_worker(0)
    a = (random.random(), float(np.random.rand()))
    torch.manual_seed(1234)
    det.seed_worker(0)
    assert (random.random(), float(np.random.rand())) == a
    torch.manual_seed(4321)
    det.seed_worker(0)
    assert (random.random(), float(np.random.rand())) != a


# --- each stream checked on its own: a draw from one stream cannot mask another stream's fault ---


def _stream_draws() -> dict[str, object]:
    return {
        "python": random.random(),
        "numpy": float(np.random.rand()),
        "torch": torch.rand(2).tolist(),
    }


def _reference_draws(seed: int) -> dict[str, object]:
    """What each stream yields right after being seeded with ``seed`` by its own library."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "python": random.Random(seed).random(),
        "numpy": float(np.random.RandomState(seed).rand()),
        "torch": torch.rand(2, generator=generator).tolist(),
    }


@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1])
@pytest.mark.parametrize("stream", ["python", "numpy", "torch"])
def test_seed_everything_seeds_each_stream_with_the_seed(seed: int, stream: str) -> None:
    det.seed_everything(seed)
    assert _stream_draws()[stream] == _reference_draws(seed)[stream]


@pytest.mark.parametrize("stream", ["python", "numpy", "torch"])
def test_each_stream_follows_the_seed(stream: str) -> None:
    det.seed_everything(5)
    five = _stream_draws()[stream]
    det.seed_everything(6)
    assert _stream_draws()[stream] != five  # negative control: the stream is not seeded with a constant


@pytest.mark.parametrize("stream", ["python", "numpy"])
def test_worker_seeding_seeds_each_stream_from_the_torch_seed(stream: str) -> None:
    for torch_seed in (1234, 2**32 + 5, 2**64 - 1):  # bit 32 set: the modulus must be exactly 2**32
        torch.manual_seed(torch_seed)
        for worker_id in (0, 1):  # the worker id plays no part: torch's per-worker seed already differs
            det.seed_worker(worker_id)
            assert _stream_draws()[stream] == _reference_draws(torch_seed % 2**32)[stream]


class _Draws(torch.utils.data.Dataset):
    """Each item is one draw from every global stream, made inside the worker that loads it."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        info = torch.utils.data.get_worker_info()
        return {
            "worker": torch.tensor(info.id if info else -1),
            "python": torch.tensor(random.random(), dtype=torch.float64),
            "numpy": torch.tensor(float(np.random.rand()), dtype=torch.float64),
            "torch": torch.rand((), dtype=torch.float64),
        }


def _worker_draws(loader_seed: int) -> dict[str, dict[int, list[float]]]:
    """Per stream, per worker: the draws of 2 DataLoader workers seeded like ``make_loader`` seeds them."""
    loader = torch.utils.data.DataLoader(
        _Draws(),
        batch_size=None,
        num_workers=2,
        worker_init_fn=det.seed_worker,
        generator=det.make_generator(loader_seed, "loader", 1),
    )
    out: dict[str, dict[int, list[float]]] = {s: {0: [], 1: []} for s in ("python", "numpy", "torch")}
    for item in loader:
        for stream, per_worker in out.items():
            per_worker[int(item["worker"])].append(float(item[stream]))
    return out


@pytest.fixture(scope="module")
def worker_draws() -> dict[int, dict[str, dict[int, list[float]]]]:
    # The parent's global state is scrambled between loaders: workers must not inherit it.
    draws = {}
    for label, loader_seed, parent_seed in (("a", 3, 11), ("again", 3, 99), ("other", 4, 11)):
        det.seed_everything(parent_seed)
        draws[label] = _worker_draws(loader_seed)
    return draws


@pytest.mark.parametrize("stream", ["python", "numpy", "torch"])
def test_dataloader_workers_seed_each_stream(stream: str, worker_draws) -> None:
    a, again, other = (worker_draws[k][stream] for k in ("a", "again", "other"))
    assert len(a[0]) == len(a[1]) == 4
    assert a == again  # the same loader seed: the same draws in each worker, whatever the parent's state
    assert a[0] != a[1]  # the two workers draw different numbers
    assert a[0] != other[0] and a[1] != other[1]  # another loader seed (epoch): other draws


@pytest.fixture
def restored_switches():
    """The determinism switches (and global RNGs) put back after the test, as the twins fixture does."""
    from twinrun.testing.twins import preserved_global_state

    with preserved_global_state():
        yield


def test_deterministic_mode_sets_every_switch_cudnn_included(restored_switches) -> None:
    # Start from the opposite of every switch, so that each assertion sees a switch that was set.
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, True
    det.enable_deterministic_mode(True)
    assert det.determinism_flags() | {"float32_matmul_precision": None} == {
        "deterministic_algorithms": True,
        "deterministic_warn_only": False,
        "cudnn_deterministic": True,
        "cudnn_benchmark": False,
        "matmul_allow_tf32": False,
        "cudnn_allow_tf32": False,
        "float32_matmul_precision": None,
    }
    assert torch.backends.cudnn.deterministic is True and torch.backends.cudnn.benchmark is False


def test_deterministic_mode_off_clears_cudnn_deterministic(restored_switches) -> None:
    det.enable_deterministic_mode(True)
    det.enable_deterministic_mode(False)
    flags = det.determinism_flags()
    assert flags["deterministic_algorithms"] is False and flags["cudnn_deterministic"] is False
    torch.backends.cudnn.benchmark = True
    det.enable_deterministic_mode(False)
    assert torch.backends.cudnn.benchmark is True  # switching off keeps the user's autotuning choice
    det.enable_deterministic_mode(True)
    assert torch.backends.cudnn.benchmark is False


def test_draw_seed_covers_exactly_the_seed_range(monkeypatch) -> None:
    # The largest value randbelow can return must be SEED_MAX itself (not one less, not one more).
    monkeypatch.setattr(det.secrets, "randbelow", lambda n: n - 1)
    assert det.draw_seed() == det.SEED_MAX


def test_deterministic_mode_is_on_by_default(restored_switches) -> None:
    torch.use_deterministic_algorithms(False)
    det.enable_deterministic_mode()
    assert det.determinism_flags()["deterministic_algorithms"] is True


def test_deterministic_mode_sets_the_cublas_workspace_unless_the_user_did(monkeypatch, restored_switches):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    det.enable_deterministic_mode(True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == det.CUBLAS_WORKSPACE == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    det.enable_deterministic_mode(True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
