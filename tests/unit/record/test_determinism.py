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
