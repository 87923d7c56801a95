import pytest
import torch
from torch import nn

from twinrun.record.determinism import seed_everything
from twinrun.record.rng_state import rng_digests
from twinrun.record.trace import (
    DataDigest,
    ParamFingerprints,
    TraceRecorder,
    batch_digest,
    param_fingerprints,
)


def test_param_fingerprints_see_one_ulp() -> None:
    seed_everything(0)
    model = nn.Linear(4, 3)
    before = param_fingerprints(model)
    assert param_fingerprints(model) == before
    with torch.no_grad():
        model.weight[1, 2] = torch.nextafter(model.weight[1, 2], torch.tensor(9.0))
    after = param_fingerprints(model)
    assert after["weight"] != before["weight"] and after["bias"] == before["bias"]


def test_param_fingerprints_cover_other_dtypes() -> None:
    model = nn.Linear(2, 2).to(torch.float64)
    assert set(param_fingerprints(model)) == {"weight", "bias"}
    half = nn.Linear(2, 2).to(torch.bfloat16)
    assert len(param_fingerprints(half)["weight"]) == 16


def test_batch_digest_depends_on_order() -> None:
    assert batch_digest(torch.tensor([1, 2, 3])) == batch_digest(torch.tensor([1, 2, 3]))
    assert batch_digest(torch.tensor([1, 2, 3])) != batch_digest(torch.tensor([2, 1, 3]))


def test_recorder_rows_and_params_every() -> None:
    model = nn.Linear(2, 1)
    recorder = TraceRecorder(params_every=2)
    for step in (1, 2, 3):
        recorder.before_step(step, 1, torch.tensor([step]))
        recorder.after_step(0.5 * step, model)
    assert [("params" in row) for row in recorder.rows] == [False, True, False]
    recorder.mark_final(model)
    assert "params" in recorder.rows[-1]
    assert recorder.rows[0]["loss"] == (0.5).hex()
    assert set(recorder.rows[0]["rng"]) >= {"python", "numpy", "torch"}


def test_cpu_fingerprint_equals_the_wraparound_sum_of_the_bits() -> None:
    seed_everything(1)
    model = nn.Linear(300, 200)
    bits = model.weight.detach().view(-1).view(torch.int32)
    expected = int(bits.sum(dtype=torch.int32)) & 0xFFFFFFFFFFFFFFFF  # torch wraps the same way
    assert param_fingerprints(model)["weight"] == f"{expected:016x}"


def _record_steps(recorder: TraceRecorder, model: nn.Module, steps: int) -> list[dict]:
    """Drive ``recorder`` like ``fit`` does; return the rows computed on the spot, for comparison."""
    expected = []
    buffer = torch.zeros(4, dtype=torch.int64)  # one index buffer reused for every batch
    for step in range(1, steps + 1):
        buffer.copy_(torch.randperm(10)[:4])
        row = {"step": step, "epoch": 1, "batch": batch_digest(buffer), "rng": rng_digests()}
        recorder.before_step(step, 1, buffer)
        with torch.no_grad():
            model.weight.add_(torch.randn_like(model.weight))  # the "optimizer step": draws and updates
        recorder.after_step(0.25 * step, model)
        row["loss"] = (0.25 * step).hex()
        row["params"] = param_fingerprints(model)
        expected.append(row)
    return expected


@pytest.mark.parametrize("flush_every", [1, 3, 256])
def test_deferred_rows_equal_rows_computed_on_the_spot(monkeypatch, flush_every: int) -> None:
    monkeypatch.setattr(TraceRecorder, "FLUSH_EVERY", flush_every)
    seed_everything(3)
    model = nn.Linear(3, 2)
    recorder = TraceRecorder()
    expected = _record_steps(recorder, model, 7)
    assert recorder.rows == expected
    assert len({row["rng"]["torch"] for row in expected}) == 7  # the check can fail: every step differs
    assert len({row["params"]["weight"] for row in expected}) == 7


def test_restore_drops_captured_steps_and_continues() -> None:
    model = nn.Linear(2, 1)
    recorder = TraceRecorder()
    _record_steps(recorder, model, 2)
    recorder.restore([{"step": 1, "kept": True}])
    assert recorder.rows == [{"step": 1, "kept": True}]
    _record_steps(recorder, model, 1)
    assert [row["step"] for row in recorder.rows] == [1, 1]


def test_mark_final_after_rows_were_read() -> None:
    model = nn.Linear(2, 1)
    recorder = TraceRecorder(params_every=5)
    recorder.before_step(1, 1, torch.tensor([0]))
    recorder.after_step(1.0, model)
    assert "params" not in recorder.rows[-1]  # reading rows flushed the step
    recorder.mark_final(model)
    assert recorder.rows[-1]["params"] == param_fingerprints(model)


class _AllOnDevice(ParamFingerprints):
    """Takes the accelerator path (sums as tensors, one transfer per flush) with CPU tensors."""

    @staticmethod
    def _on_host(bits: torch.Tensor) -> bool:
        return False


def test_device_path_gives_the_host_path_fingerprints(monkeypatch) -> None:
    seed_everything(4)
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2).to(torch.float64))
    assert _AllOnDevice(model)() == param_fingerprints(model)
    host = ParamFingerprints  # the expected values below come from the host path, not the patched name
    expected = {}
    monkeypatch.setattr("twinrun.record.trace.ParamFingerprints", _AllOnDevice)
    recorder = TraceRecorder()
    for step in (1, 2, 3):
        recorder.before_step(step, 1, torch.tensor([step]))
        with torch.no_grad():
            model[0].weight.add_(1.0)
        recorder.after_step(1.0, model)
        expected[step] = host(model)()
    assert recorder._fingerprints is not None and recorder._fingerprints.device  # the path was taken
    assert {row["step"]: row["params"] for row in recorder.rows} == expected


def test_device_sums_of_different_models_in_one_flush(monkeypatch) -> None:
    small, large = nn.Linear(2, 1), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    expected = [ParamFingerprints(small)(), ParamFingerprints(large)()]  # the host path, before the patch
    monkeypatch.setattr("twinrun.record.trace.ParamFingerprints", _AllOnDevice)
    recorder = TraceRecorder()
    for step, model in ((1, small), (2, large)):  # sums of 2 and 4 parameters: not stackable
        recorder.before_step(step, 1, torch.tensor([step]))
        recorder.after_step(1.0, model)
    assert [row["params"] for row in recorder.rows] == expected


def _digest(*, indices=None, batch=None) -> str:
    digest = DataDigest()
    if indices is not None:
        digest.add_indices(indices)
    if batch is not None:
        digest.add_batch(batch)
    return digest.hexdigest()


def test_data_digest_of_indices_is_the_batch_digest() -> None:
    assert _digest(indices=[5, 1, 2]) == batch_digest(torch.tensor([5, 1, 2]))
    assert _digest(indices=torch.tensor([5, 1, 2], dtype=torch.int32)) == batch_digest(
        torch.tensor([5, 1, 2])
    )


def test_data_digest_sees_values_order_dtype_and_nesting() -> None:
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0])
    reference = _digest(batch=([a, b], {"y": torch.tensor([1])}))
    assert reference == _digest(batch=([a.clone(), b.clone()], {"y": torch.tensor([1])}))
    different = [
        ([b, a], {"y": torch.tensor([1])}),  # order
        ([a, b], {"y": torch.tensor([2])}),  # a value
        ([a.double(), b], {"y": torch.tensor([1])}),  # a dtype
        ([a], b, {"y": torch.tensor([1])}),  # nesting
        ([a, b], {"z": torch.tensor([1])}),  # a key
    ]
    assert len({reference, *(_digest(batch=batch) for batch in different)}) == len(different) + 1


def test_tensor_loss_is_written_exactly_at_the_flush() -> None:
    recorder = TraceRecorder()
    recorder.before_step(1, 1, torch.tensor([0]))
    recorder.after_step(torch.tensor(0.1, dtype=torch.float32), nn.Linear(1, 1))
    assert recorder.rows[0]["loss"] == float(torch.tensor(0.1, dtype=torch.float32)).hex() != (0.1).hex()


def test_add_data_turns_the_step_data_into_one_digest() -> None:
    recorder = TraceRecorder()
    recorder.before_step(1, 1, torch.tensor([0, 1]))
    recorder.add_data(indices=torch.tensor([2]))
    assert recorder.open_step == 1
    recorder.after_step(1.0, nn.Linear(1, 1))
    assert recorder.open_step is None
    assert recorder.rows[0]["batch"] == batch_digest(torch.tensor([0, 1, 2]))


@pytest.mark.parametrize(
    "move",
    [
        lambda m: setattr(m.weight, "data", m.weight.data + 1),  # a new storage, same dtype
        lambda m: m.double(),  # new storages of another width
    ],
    ids=["param.data", "model.double"],
)
def test_fingerprints_follow_a_parameter_whose_storage_moved(move) -> None:
    """The integer views are built once; a parameter with a new storage must not keep the old sums."""
    model = nn.Linear(4, 3)
    fingerprints = ParamFingerprints(model)
    before = fingerprints()
    move(model)
    after = fingerprints()
    assert after == param_fingerprints(model)  # what a fresh look sees
    assert after["weight"] != before["weight"]
