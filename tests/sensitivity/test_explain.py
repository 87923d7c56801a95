"""--explain: planted faults at step s are named by op and module at that step; clean replays reproduce."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest
import torch

from tests.sensitivity.planted_ops import one_ulp_in_to_mu
from tests.variants import APPS_BY_NAME
from twinrun.compare.judge.ops import first_differing_op, read_ops
from twinrun.compare.runs import compare_runs
from twinrun.record.ops import OpRecorder, ops_path
from twinrun.trainers.loop import Hooks, StepContext
from twinrun.verify.explain import explain_pair, nearest_checkpoint

OVERRIDES = (
    "seed=5",
    "training.epochs=2",
    "training.batch_size=48",
    "data.train_samples=96",
    "data.test_samples=16",
)
STEPS_PER_EPOCH = 2  # a checkpoint at the end of epoch 1 (step 2)
APP = APPS_BY_NAME["vae_mnist"]


@torch.library.custom_op("twinrun_tests::noisy", mutates_args=())
def noisy(x: torch.Tensor) -> torch.Tensor:
    """Adds noise from an unseeded generator: a custom op that is nondeterministic by construction."""
    generator = torch.Generator().manual_seed(secrets.randbits(63))
    return x + 1e-3 * torch.randn(x.shape, generator=generator, dtype=x.dtype)


@noisy.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


noisy.register_autograd(lambda ctx, grad: grad)


def noisy_decoder_hidden(step: int) -> Hooks:
    """At ``step``, decoder_hidden's output goes through the noisy custom op (in every run)."""
    handles = []

    def before(ctx: StepContext) -> None:
        if ctx.step == step:
            handles.append(ctx.model.decoder_hidden.register_forward_hook(lambda m, i, out: noisy(out)))

    def after(ctx: StepContext) -> None:
        while handles:
            handles.pop().remove()

    return Hooks(before_step=[before], after_step=[after])


def _replayer(tmp_path: Path, hooks_for: dict[int, Hooks | None]):
    def replay(index: int, twin: Path, extra: list[str]) -> Path:
        out = tmp_path / f"replay-{index}"
        APP.train(APP.compose(*OVERRIDES, *extra), out, hooks=hooks_for.get(index))
        return out

    return replay


_CLEAN: list[Path] = []  # one clean run per worker process, copied by every test that needs one


def _clean_run(tmp_path_factory: pytest.TempPathFactory, into: Path) -> Path:
    """A copy of the clean run (no hooks) at ``into``: the clean twin is the same in every test."""
    if not _CLEAN:
        run = tmp_path_factory.mktemp("clean") / "run"
        APP.train(APP.compose(*OVERRIDES), run)
        _CLEAN.append(run)
    shutil.copytree(_CLEAN[0], into)
    return into


def _twins(tmp_path: Path, hooks_a: Hooks | None, hooks_b: Hooks | None, factory=None) -> tuple[Path, Path]:
    """Twins trained with the given hooks; a hookless twin is a copy of the shared clean run (``factory``)."""
    paths = []
    for name, hooks in (("a", hooks_a), ("b", hooks_b)):
        if hooks is None and factory is not None:
            paths.append(_clean_run(factory, tmp_path / name))
        else:
            APP.train(APP.compose(*OVERRIDES), tmp_path / name, hooks=hooks)
            paths.append(tmp_path / name)
    return paths[0], paths[1]


def _line_calling_to_mu() -> int:
    """The line of the VAE encoder that calls ``self.to_mu`` (read: an edit above it cannot break this)."""
    import twinrun.trainers.models.vae as vae

    lines = Path(vae.__file__).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if "self.to_mu(" in line)


@pytest.mark.parametrize("step", [2, 4])  # 2: replayed from the start; 4: from the checkpoint at step 2
def test_one_ulp_in_an_op_is_named_with_its_module(tmp_path: Path, tmp_path_factory, step: int) -> None:
    a, b = _twins(tmp_path, None, one_ulp_in_to_mu(step), tmp_path_factory)
    divergence = compare_runs(a, b).divergence
    assert (divergence.step, divergence.cause) == (step, "computation")
    result = explain_pair(a, b, step, _replayer(tmp_path, {1: one_ulp_in_to_mu(step)}))
    assert [r.problem for r in result.replays] == [None, None]  # both replays reproduce their twin's row
    assert [r.from_step for r in result.replays] == [0 if step <= STEPS_PER_EPOCH else STEPS_PER_EPOCH] * 2
    ops = result.ops
    assert ops is not None and ops.found
    assert (ops.op_a["op"], ops.op_a["module"], ops.op_a["phase"]) == ("aten::addmm", "to_mu", "forward")
    assert ops.op_a["source"].endswith(f"vae.py:{_line_calling_to_mu()}")
    assert ops.identical_before == ops.index > 0
    assert ops_path(a, step).is_file() and ops_path(b, step).is_file()  # kept beside each run
    assert f"step {step}, first differing op: aten::addmm in to_mu (forward)" in result.lines()[-1]


def test_a_clean_replay_reproduces_the_step_and_its_ops(tmp_path: Path, tmp_path_factory) -> None:
    a, b = _twins(tmp_path, None, None, tmp_path_factory)
    result = explain_pair(a, b, 4, _replayer(tmp_path, {}))
    assert [r.problem for r in result.replays] == [None, None]
    assert result.ops is not None and not result.ops.found  # identical replays: every op the same
    assert result.ops.ops_a == result.ops.ops_b > 100


def test_a_replay_that_does_not_reproduce_is_reported(tmp_path: Path, tmp_path_factory) -> None:
    """Negative control of the reproduction check: a replay with a fault its twin did not have."""
    a, b = _twins(tmp_path, None, None, tmp_path_factory)
    result = explain_pair(a, b, 2, _replayer(tmp_path, {1: one_ulp_in_to_mu(2)}))
    assert result.replays[0].problem is None
    assert result.replays[1].problem == (
        "replay does not reproduce step 2: its parameter fingerprints differ from the run's trace row"
    )


def test_unseeded_noise_in_a_custom_op_is_named(tmp_path: Path) -> None:
    hooks = {0: noisy_decoder_hidden(2), 1: noisy_decoder_hidden(2)}
    a, b = _twins(tmp_path, hooks[0], hooks[1])
    assert compare_runs(a, b).divergence.step == 2
    result = explain_pair(a, b, 2, _replayer(tmp_path, hooks))
    ops = result.ops
    assert ops is not None and ops.found
    assert (ops.op_a["op"], ops.op_a["module"], ops.op_a["phase"]) == (
        "twinrun_tests::noisy",
        "decoder_hidden",
        "forward",
    )
    # the step itself is nondeterministic: a replay does not reproduce its own twin
    assert all("does not reproduce step 2" in (r.problem or "") for r in result.replays)


class _Reduce(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 2).sum()  # a parallel reduction: its rounding depends on the thread count


def _record_with_threads(threads: int, x: torch.Tensor) -> list[dict]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = torch.nn.Sequential(_Reduce())
        with OpRecorder(model) as ops:
            model(x)
        return ops.rows
    finally:
        torch.set_num_threads(before)


def test_a_thread_count_difference_in_a_reduction_is_named() -> None:
    # Whether 1 and 2 threads round a sum differently depends on the values: take the first input that does.
    for seed in range(1, 9):
        x = torch.randn(100_000, generator=torch.Generator().manual_seed(seed))
        one, two = _record_with_threads(1, x), _record_with_threads(2, x)
        if one[-1]["outputs"] != two[-1]["outputs"]:
            break
    else:
        pytest.skip("this machine's sum gives the same bits with 1 and 2 threads for every input tried")
    found = first_differing_op(one, two, step=1)
    assert (found.op_a["op"], found.op_a["module"]) == ("aten::sum", "0")
    assert found.identical_before == 1  # aten::mul before it is the same with any thread count
    assert first_differing_op(one, _record_with_threads(1, x), step=1).index is None  # same threads: same


def test_nearest_checkpoint_is_before_the_step(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    for s in (4, 8, 12):
        (tmp_path / "checkpoints" / f"step-{s:08d}.pt").write_bytes(b"")
    assert nearest_checkpoint(tmp_path, 8)[1] == 4
    assert nearest_checkpoint(tmp_path, 9)[1] == 8
    assert nearest_checkpoint(tmp_path, 4) == (None, 0)


def test_read_ops_rejects_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "ops.jsonl"
    bad.write_text('{"op": "aten::mm"}\n[1]\n')
    with pytest.raises(Exception, match="line 2 is not a JSON object"):
        read_ops(bad)
