import random

import numpy as np
import pytest
import torch

from twinrun.record import rng_state
from twinrun.record.determinism import seed_everything


def draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_capture_restore_round_trip() -> None:
    seed_everything(11)
    state = rng_state.capture_rng_state()
    expected = draws()
    assert draws() != expected  # negative control: without restoring, the stream moved on
    rng_state.restore_rng_state(state)
    assert draws() == expected


def test_captured_state_loads_with_weights_only(tmp_path) -> None:
    seed_everything(5)
    path = tmp_path / "rng.pt"
    torch.save(rng_state.capture_rng_state(), path)
    expected = draws()
    rng_state.restore_rng_state(torch.load(path, weights_only=True))
    assert draws() == expected


def test_rng_digests_track_each_stream() -> None:
    seed_everything(1)
    before = rng_state.rng_digests()
    assert rng_state.rng_digests() == before
    torch.rand(1)
    after = rng_state.rng_digests()
    assert after["torch"] != before["torch"]
    assert after["python"] == before["python"] and after["numpy"] == before["numpy"]
    random.random()
    assert rng_state.rng_digests()["python"] != before["python"]


def test_numpy_state_bytes_equal_get_state() -> None:
    np.random.seed(4)
    np.random.rand(7)  # a position other than the freshly seeded 624
    _, keys, pos, *_ = np.random.get_state()
    expected = np.append(keys, pos).astype("<u4").tobytes()
    assert rng_state._numpy_view.words is not None  # the zero-copy view is in use on this numpy
    assert rng_state._numpy_view.state_bytes() == expected
    np.random.rand()
    assert rng_state._numpy_view.state_bytes() != expected  # negative control: a draw changes it


def test_numpy_view_follows_a_replaced_bit_generator() -> None:
    if not hasattr(np.random, "set_bit_generator"):
        pytest.skip("numpy < 1.25 has no set_bit_generator")
    original, view = np.random.get_bit_generator(), rng_state._numpy_view
    before = view.state_bytes()  # the view is on the original generator
    replacement = np.random.MT19937(123)
    try:
        np.random.set_bit_generator(replacement)
        _, keys, pos, *_ = np.random.get_state()
        after = view.state_bytes()
        assert after == np.append(keys, pos).astype("<u4").tobytes() != before
        assert view.generator is replacement and view.words is not None  # read in place, not get_state()
        np.random.rand()
        assert view.state_bytes() != after  # and it follows the new generator's draws
    finally:
        np.random.set_bit_generator(original)


def test_snapshot_digests_equal_immediate_digests() -> None:
    seed_everything(2)
    snapshot = rng_state.rng_snapshot()
    expected = rng_state.rng_digests()
    torch.rand(5), random.random(), np.random.rand()  # moving on does not change a taken snapshot
    assert rng_state.snapshot_digests(snapshot) == expected
    assert rng_state.rng_digests() != expected


def test_python_state_bytes_equal_getstate() -> None:
    random.seed(9)
    random.random()
    view = rng_state._python_view
    expected = rng_state._python_state_from_getstate()
    assert view.state_bytes() == expected
    assert view.memory is not None  # the direct read is in use on CPython
    random.random()
    assert view.state_bytes() != expected  # negative control: a draw changes it
    random.seed(9)
    random.random()
    assert view.state_bytes() == expected


def test_python_view_falls_back_for_another_layout(monkeypatch) -> None:
    random.seed(3)
    direct = rng_state._python_view.state_bytes()  # read in place (checked above)
    view = rng_state._PythonStateView()
    monkeypatch.setattr(rng_state._PythonStateView, "SIZE", 8)  # a layout check that cannot match
    assert view.state_bytes() == direct  # the fallback gives the same bytes as the direct read
    assert view.memory is None
