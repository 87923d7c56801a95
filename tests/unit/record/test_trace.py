import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from twinrun.record import trace
from twinrun.record.determinism import seed_everything
from twinrun.record.rng_state import rng_digests
from twinrun.record.trace import (
    DataDigest,
    ParamFingerprints,
    ParamSums,
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


def test_batch_digest_reads_any_index_tensor_as_int64() -> None:
    """The trace/2 batch digest: SHA-256 prefix of the indices as int64 bytes, whatever tensor holds them."""
    expected = hashlib.sha256(np.array([5, 1, 2], dtype=np.int64).tobytes()).hexdigest()[:16]
    assert batch_digest(torch.tensor([5, 1, 2])) == expected
    assert batch_digest(torch.tensor([5, 1, 2], dtype=torch.int32)) == expected
    assert batch_digest(torch.tensor([5.0, 1.0, 2.0])) == expected
    strided = torch.tensor([[5, 0], [1, 0], [2, 0]])[:, 0]  # not contiguous
    assert not strided.is_contiguous() and batch_digest(strided) == expected


def test_data_digest_hashes_the_documented_byte_stream() -> None:
    """The trace/2 data digest, spelled out: traces of one format must stay comparable across versions."""
    x = torch.tensor([[1.0, -2.0]])
    n = np.array([[1, 2], [3, 4]], dtype=np.int16)[:, 1]  # a strided view: hashed in C order
    batch = {"x": x, "n": n, "meta": ("a", 3, None, b"z", 1.5, True, object())}
    expected = hashlib.sha256()
    for part in (b"'x'", b"torch.float32(1, 2)", x.numpy().tobytes()):
        expected.update(part)
    for part in (b"'n'", b"int16(2,)", np.array([2, 4], dtype=np.int16).tobytes()):
        expected.update(part)
    for part in (b"'meta'", b"[", b"'a'", b"3", b"None", b"b'z'", b"1.5", b"True", b"]"):  # object(): skipped
        expected.update(part)
    assert _digest(batch=batch) == expected.hexdigest()[:16]


def test_data_digest_skips_objects_it_cannot_hash_but_not_none() -> None:
    a = torch.tensor([1.0])
    assert _digest(batch=[a, object()]) == _digest(batch=[a])
    assert _digest(batch=[a, None]) != _digest(batch=[a])


def _wraparound_fingerprint(param: torch.Tensor) -> str:
    """The documented fingerprint in plain Python: the bits as integers (1-byte: unsigned), summed
    with signed wraparound in 32 bits (64 for 8-byte dtypes), as 16 hex digits of its 64-bit pattern."""
    width = param.element_size()
    view = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[width]
    total = sum(param.detach().reshape(-1).view(view).tolist())
    bits = 64 if width == 8 else 32
    wrapped = (total + 2 ** (bits - 1)) % 2**bits - 2 ** (bits - 1)
    return f"{wrapped % 2**64:016x}"


class _EveryWidth(nn.Module):
    """Parameters of 1, 2, 4 and 8 bytes whose sums overflow their accumulator."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.tensor([200, 255, 7], dtype=torch.uint8), requires_grad=False)
        self.w2 = nn.Parameter(torch.full((140000,), -3.0, dtype=torch.bfloat16))  # int16 bits < 0
        self.w4 = nn.Parameter(torch.full((10,), -1.0e30))  # int32 bits < 0
        self.w8 = nn.Parameter(torch.tensor([1.0e300, 2.0e300, -3.0], dtype=torch.float64))


@pytest.mark.parametrize("fingerprints", [ParamFingerprints, _AllOnDevice], ids=["host", "device"])
def test_fingerprints_are_wraparound_sums_of_every_width(fingerprints: type[ParamFingerprints]) -> None:
    model = _EveryWidth()
    expected = {name: _wraparound_fingerprint(param) for name, param in model.named_parameters()}
    assert fingerprints(model)() == expected
    assert len(set(expected.values())) == 4  # the check can fail: no two sums agree


def test_cpu_parameters_are_summed_at_capture() -> None:
    """On the CPU the sums are plain integers at once: nothing left on a device for the flush to copy."""
    model = nn.Linear(3, 2)
    sums = ParamFingerprints(model).capture()
    assert sums.device is None and sums.device_positions == []
    assert [f"{value % 2**64:016x}" for value in sums.host] == list(param_fingerprints(model).values())


def _step(recorder: TraceRecorder, model: nn.Module, step: int, **after) -> dict[str, str]:
    """One recorded step that changes ``model``; returns its fingerprints right after the step."""
    recorder.before_step(step, 1, torch.tensor([step]))
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    recorder.after_step(1.0, model, **after)
    return param_fingerprints(model)


def test_params_every_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^trace\.params_every must be >= 1$"):
        TraceRecorder(params_every=0)


def test_a_recorder_made_with_rows_continues_after_them() -> None:
    given = [{"step": 4, "epoch": 1}]
    recorder = TraceRecorder(rows=given)
    _step(recorder, nn.Linear(1, 1), 5)
    assert [row["step"] for row in recorder.rows] == [4, 5]
    assert given == [{"step": 4, "epoch": 1}]  # the caller's list is not appended to


def test_final_step_carries_params_whatever_params_every() -> None:
    model = nn.Linear(2, 1)
    recorder = TraceRecorder(params_every=10)
    _step(recorder, model, 1)
    last = _step(recorder, model, 2, final=True)
    assert [row.get("params") for row in recorder.rows] == [None, last]


def test_mark_final_fingerprints_the_last_captured_step_once() -> None:
    model = nn.Linear(2, 1)
    recorder = TraceRecorder(params_every=3)
    at_step = {step: _step(recorder, model, step) for step in (1, 2, 3, 4)}
    recorder.mark_final(model)  # step 4 is captured, not yet a row
    with torch.no_grad():
        model.bias.add_(1.0)  # a change after the final mark does not reach the trace
    recorder.mark_final(model)
    assert [row.get("params") for row in recorder.rows] == [None, None, at_step[3], at_step[4]]


def test_mark_final_keeps_the_fingerprints_a_row_has() -> None:
    model = nn.Linear(2, 1)
    recorder = TraceRecorder()
    recorder.mark_final(model)  # nothing recorded: nothing to mark
    assert recorder.rows == []
    last = _step(recorder, model, 1)
    assert recorder.rows[-1]["params"] == last  # flushed into a row
    with torch.no_grad():
        model.bias.add_(1.0)
    recorder.mark_final(model)
    assert recorder.rows[-1]["params"] == last


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda recorder: recorder.add_data(indices=[0]), "add_data without before_step"),
        (lambda recorder: recorder.after_step(1.0, nn.Linear(1, 1)), "after_step without before_step"),
    ],
)
def test_a_step_call_needs_an_open_step(call, message: str) -> None:
    recorder = TraceRecorder()
    recorder.before_step(1, 1, torch.tensor([0]))
    recorder.discard_step()
    with pytest.raises(AssertionError, match=f"^{message}"):
        call(recorder)


def test_add_data_digests_batches_after_the_indices() -> None:
    recorder = TraceRecorder()
    recorder.before_step(1, 1, torch.tensor([0, 1]))
    recorder.add_data(batch={"x": torch.ones(2)})  # a micro-batch given by its contents alone
    recorder.add_data(indices=[2], batch=None)
    recorder.after_step(1.0, nn.Linear(1, 1))
    expected = DataDigest()
    expected.add_indices([0, 1])
    expected.add_batch({"x": torch.ones(2)})
    expected.add_indices([2])
    assert recorder.rows[0]["batch"] == expected.hexdigest() != _digest(indices=[0, 1, 2])


def test_discard_step_records_nothing_of_the_open_step() -> None:
    recorder = TraceRecorder()
    recorder.before_step(1, 1, torch.tensor([0]))
    recorder.discard_step()
    assert recorder.open_step is None and recorder.rows == []
    _step(recorder, nn.Linear(1, 1), 1)
    assert [row["batch"] for row in recorder.rows] == [batch_digest(torch.tensor([1]))]


def test_rows_are_made_every_flush_every_steps(monkeypatch) -> None:
    """Digests are made in batches: none while steps are captured, FLUSH_EVERY rows at once."""
    monkeypatch.setattr(TraceRecorder, "FLUSH_EVERY", 3)
    hashed = []
    digests = trace.snapshot_digests
    monkeypatch.setattr(trace, "snapshot_digests", lambda snapshot: hashed.append(1) or digests(snapshot))
    model, recorder = nn.Linear(1, 1), TraceRecorder()
    for step in (1, 2):
        _step(recorder, model, step)
    assert len(hashed) == 0
    _step(recorder, model, 3)
    assert len(hashed) == 3
    _step(recorder, model, 4)
    assert len(hashed) == 3  # step 4 waits for the next flush
    assert len(recorder.rows) == 4 and len(hashed) == 4  # reading the rows flushes it


def test_device_sums_are_copied_in_one_transfer_per_flush(monkeypatch) -> None:
    """One device synchronisation per flush, not per step (counted as ``Tensor.cpu`` calls)."""
    model = nn.Linear(3, 2)
    monkeypatch.setattr(trace, "ParamFingerprints", _AllOnDevice)
    recorder = TraceRecorder(params_every=2)
    expected = [_step(recorder, model, step) for step in (1, 2, 3, 4, 5)]
    copies = []
    cpu = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **k: copies.append(1) or cpu(self, *a, **k))
    rows = recorder.rows
    assert len(copies) == 1
    assert [row.get("params") for row in rows] == [None, expected[1], None, expected[3], None]


def test_param_sums_refuse_values_that_do_not_match_the_parameters() -> None:
    """A fingerprint is never given to the wrong parameter, or silently dropped."""
    sums = _AllOnDevice(nn.Linear(2, 1)).capture()  # weight and bias, both on the "device"
    assert sums.device is not None and sums.device.dtype == torch.int64  # as documented, whatever the width
    assert sums.hex([1, 2]) == {"weight": f"{1:016x}", "bias": f"{2:016x}"}
    for values in ([1], [1, 2, 3]):
        with pytest.raises(ValueError, match="zip"):
            sums.hex(values)
    with pytest.raises(ValueError, match="zip"):
        ParamSums(["weight", "bias"], [7], [], None).hex()  # a host sum missing
