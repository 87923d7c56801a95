import torch
from torch import nn

from twinrun.determinism import seed_everything
from twinrun.trace import TraceRecorder, batch_digest, param_fingerprints


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
