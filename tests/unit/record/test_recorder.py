import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from twinrun import Recorder
from twinrun.record import runs
from twinrun.record.determinism import seed_everything
from twinrun.record.recorder import RecorderError
from twinrun.record.trace import TRACE_FORMAT, batch_digest, param_fingerprints


def _rows(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / runs.TRACE).read_text().splitlines()]


def _train(run_dir, *, steps: int = 4, order=None, **recorder_kwargs) -> nn.Module:
    """A plain loop: 4 batches of 2 samples, indices and batch tensors given to the recorder."""
    seed_everything(5)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    order = order if order is not None else torch.arange(8)
    with Recorder(run_dir, model, optimizer, **recorder_kwargs) as rec:
        for step in range(steps):
            indices = order[2 * step : 2 * step + 2]
            rec.before_step(indices=indices, batch=(x[indices], y[indices]))
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x[indices]), y[indices])
            loss.backward()
            optimizer.step()
            rec.after_step(loss)
    return model


def test_a_plain_loop_writes_the_trace_weights_and_environment(tmp_path) -> None:
    model = _train(tmp_path)
    rows = _rows(tmp_path)
    assert [(row["step"], row["epoch"]) for row in rows] == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert all(set(row["rng"]) >= {"python", "numpy", "torch"} and "params" in row for row in rows)
    assert rows[-1]["params"] == param_fingerprints(model)
    assert float.fromhex(rows[0]["loss"]) > 0
    weights = load_file(tmp_path / runs.WEIGHTS)
    assert torch.equal(weights["weight"], model.weight.detach())
    manifest = json.loads((tmp_path / runs.MANIFEST).read_text())
    assert set(manifest["tensors"]) == {"weight", "bias"}
    assert json.loads((tmp_path / runs.ENV).read_text())["trace_format"] == TRACE_FORMAT


def test_twin_loops_agree_and_another_order_does_not(tmp_path) -> None:
    _train(tmp_path / "a")
    _train(tmp_path / "b")
    _train(tmp_path / "c", order=torch.tensor([1, 0, 2, 3, 4, 5, 6, 7]))
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
    assert (tmp_path / "a" / runs.WEIGHTS).read_bytes() == (tmp_path / "b" / runs.WEIGHTS).read_bytes()
    first_a, first_c = _rows(tmp_path / "a")[0], _rows(tmp_path / "c")[0]
    assert first_a["batch"] != first_c["batch"] and first_a["rng"] == first_c["rng"]


def test_indices_alone_give_the_trainers_digest(tmp_path) -> None:
    model = nn.Linear(2, 1)
    with Recorder(tmp_path, model) as rec:
        rec.before_step(indices=torch.tensor([3, 1]))
        rec.after_step(1.5)
        rec.before_step(indices=[4, 2])  # a list is digested as int64 indices too
        rec.after_step(torch.tensor(0.25))
    rows = _rows(tmp_path)
    assert rows[0]["batch"] == batch_digest(torch.tensor([3, 1]))
    assert rows[1]["batch"] == batch_digest(torch.tensor([4, 2]))
    assert [row["loss"] for row in rows] == [(1.5).hex(), (0.25).hex()]


def test_batch_contents_alone_are_a_data_order_digest(tmp_path) -> None:
    model = nn.Linear(2, 1)
    batches = [
        {"x": torch.tensor([1.0, 2.0])},
        {"x": torch.tensor([2.0, 1.0])},
        {"x": torch.tensor([1.0, 2.0])},
    ]
    with Recorder(tmp_path, model) as rec:
        for batch in batches:
            rec.before_step(batch=batch)
            rec.after_step(0.0)
    digests = [row["batch"] for row in _rows(tmp_path)]
    assert digests[0] == digests[2] != digests[1]


def test_gradient_accumulation_makes_one_row_of_every_micro_batch(tmp_path) -> None:
    def digest(second: list[int]) -> str:
        with Recorder(tmp_path, nn.Linear(2, 1)) as rec:
            rec.before_step(indices=[0, 1], epoch=2)
            rec.before_step(indices=second)  # the next micro-batch of the same optimizer step
            rec.after_step(1.0)
        (row,) = _rows(tmp_path)
        assert (row["step"], row["epoch"]) == (1, 2)
        return row["batch"]

    assert digest([2, 3]) == batch_digest(torch.tensor([0, 1, 2, 3]))
    assert digest([3, 2]) != digest([2, 3])


def test_an_exception_in_the_block_writes_no_trace_or_weights(tmp_path) -> None:
    model = nn.Linear(2, 1)
    with pytest.raises(RuntimeError, match="boom"), Recorder(tmp_path, model) as rec:
        rec.before_step(indices=[0])
        rec.after_step(1.0)
        rec.before_step(indices=[1])
        raise RuntimeError("boom")
    assert (tmp_path / runs.ENV).is_file()
    assert not (tmp_path / runs.TRACE).exists() and not (tmp_path / runs.WEIGHTS).exists()
    assert not (tmp_path / runs.MANIFEST).exists()


def test_restore_continues_the_step_numbers_and_discard_forgets_a_step(tmp_path) -> None:
    model = nn.Linear(2, 1)
    with Recorder(tmp_path, model) as rec:
        rec.restore([{"step": 7, "epoch": 2}])
        rec.before_step(indices=[0])
        rec.discard_step()  # no optimizer step followed
        rec.before_step(indices=[1])
        rec.after_step(1.0)
    rows = _rows(tmp_path)
    assert [row["step"] for row in rows] == [7, 8]
    assert rows[1]["batch"] == batch_digest(torch.tensor([1]))


def test_ranks_write_their_own_weights_and_rank_0_the_run_dir(tmp_path) -> None:
    for rank in (1, 0):
        with Recorder(tmp_path, nn.Linear(2, 1), rank=rank) as rec:
            rec.before_step(indices=[rank])
            rec.after_step(1.0)
        if rank == 1:
            assert not (tmp_path / runs.ENV).exists() and not (tmp_path / runs.TRACE).exists()
        assert (runs.rank_dir(tmp_path, rank) / runs.WEIGHTS).is_file()
        assert rec.rank_manifest is not None
    assert (tmp_path / runs.TRACE).is_file() and rec.manifest is not None


def test_config_is_written_canonical(tmp_path) -> None:
    with Recorder(tmp_path, nn.Linear(2, 1), config={"seed": 3, "lr": 0.5, "paths": {"out": "/x"}}) as rec:
        rec.before_step(indices=[0])
        rec.after_step(1.0)
    text = (tmp_path / runs.RESOLVED_CONFIG).read_text()
    assert "lr: 0.5" in text and "seed: 3" in text


@pytest.mark.parametrize(
    ("misuse", "message"),
    [
        (lambda rec: rec.before_step(), "indices= or batch="),
        (lambda rec: rec.after_step(1.0), "after_step without before_step"),
        (lambda rec: (rec.before_step(indices=[0]), rec.after_step(torch.ones(2))), "scalar loss"),
    ],
)
def test_misuse_is_a_one_line_error(tmp_path, misuse, message: str) -> None:
    rec = Recorder(tmp_path, nn.Linear(2, 1)).start()
    with pytest.raises(RecorderError, match=message) as error:
        misuse(rec)
    assert "\n" not in str(error.value)


def test_an_optimizer_of_another_model_is_refused(tmp_path) -> None:
    other = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(RecorderError, match="not the model's"):
        Recorder(tmp_path, nn.Linear(2, 1), other)
    Recorder(tmp_path, (model := nn.Linear(2, 1)), torch.optim.SGD(model.parameters(), lr=0.1))


def test_the_recipe_in_the_docs_runs_and_twins_agree(tmp_path) -> None:
    text = (Path(__file__).parents[3] / "docs" / "recorder.md").read_text()
    recipe = re.search(r"save as `train_plain.py`:\n\n```python\n(.*?)```", text, re.S | re.I)
    assert recipe is not None, "docs/recorder.md lost its plain-loop recipe"
    namespace: dict = {"__name__": "train_plain"}
    exec(compile(recipe.group(1), "train_plain.py", "exec"), namespace)
    namespace["main"](str(tmp_path / "a"))
    namespace["main"](str(tmp_path / "b"))
    namespace["main"](str(tmp_path / "c"), seed=1)
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b") != _rows(tmp_path / "c")
    assert len(_rows(tmp_path / "a")) == 24
