"""``twinrun audit``'s pure core: which segments, and whether a replay reproduces the recorded rows."""

from __future__ import annotations

from pathlib import Path

from twinrun.verify.audit import (
    LIGHTNING,
    RECORDER,
    AuditResult,
    Segment,
    SegmentResult,
    candidate_segments,
    checkpoint_steps,
    choose_segments,
    segment_divergence,
)
from twinrun.verify.audit_run import replay_settings


def _row(step: int, **changed: object) -> dict[str, object]:
    row: dict[str, object] = {
        "step": step,
        "epoch": 1 + (step - 1) // 10,
        "batch": f"b{step}",
        "rng": {"torch": f"t{step}", "numpy": "n", "python": "p"},
        "loss": f"0x1.{step:04x}p+0",
        "params": {"w": f"w{step}", "b": f"b{step}"},
    }
    row.update(changed)
    return row


ROWS = [_row(s) for s in range(1, 41)]
CHECKPOINTS = {s: Path(f"checkpoints/step-{s:08d}.pt") for s in (10, 20, 30, 40)}


def test_candidates_start_at_zero_and_at_every_checkpoint_before_the_last_step() -> None:
    segments = candidate_segments(CHECKPOINTS, 40, 5)
    assert [(s.start, s.stop) for s in segments] == [(0, 5), (10, 15), (20, 25), (30, 35)]
    assert segments[0].checkpoint is None and segments[1].checkpoint == CHECKPOINTS[10]
    assert candidate_segments({38: Path("c")}, 40, 5)[-1].stop == 40  # clipped at the run's end


def test_the_first_and_the_last_segment_are_always_chosen() -> None:
    candidates = candidate_segments({s: Path(str(s)) for s in range(10, 200, 10)}, 200, 5)
    for seed in range(20):
        chosen = choose_segments(candidates, 4, seed)
        assert len(chosen) == 4 and chosen[0].start == 0 and chosen[-1].start == 190
        assert [s.start for s in chosen] == sorted(s.start for s in chosen)
    assert choose_segments(candidates, 4, 1) == choose_segments(candidates, 4, 1)  # the seed decides
    assert {tuple(s.start for s in choose_segments(candidates, 4, seed)) for seed in range(20)} != {
        tuple(s.start for s in choose_segments(candidates, 4, 0))
    }
    assert choose_segments(candidates, 100, 0) == candidates
    assert choose_segments(candidates, 1, 0) == candidates[:1]


def test_a_replay_that_matches_is_reproduced() -> None:
    replayed = [dict(r) for r in ROWS[:15]]  # the restored rows before the segment count for nothing
    replayed[3]["loss"] = "0x0p+0"
    assert segment_divergence(ROWS, replayed, Segment(10, 15, CHECKPOINTS[10])) is None


def test_a_replay_that_differs_names_the_step_cause_and_parameter() -> None:
    segment = Segment(10, 15, CHECKPOINTS[10])
    loss = [*ROWS[:12], _row(13, loss="0x1p+9", params={"w": "other", "b": "b13"}), *ROWS[13:15]]
    div = segment_divergence(ROWS, loss, segment)
    assert (div.step, div.cause, div.parameter) == (13, "computation", "w")
    order = [*ROWS[:11], _row(12, batch="x"), *ROWS[12:15]]
    assert segment_divergence(ROWS, order, segment).cause == "data order"
    rng = [*ROWS[:10], _row(11, rng={"torch": "other", "numpy": "n", "python": "p"}), *ROWS[11:15]]
    div = segment_divergence(ROWS, rng, segment)
    assert (div.step, div.cause, div.rng_streams) == (11, "rng stream", ["torch"])
    short = ROWS[:13]
    assert segment_divergence(ROWS, short, segment).cause == "length"


def test_rows_without_parameter_fingerprints_compare_on_the_rest() -> None:
    sparse = [{k: v for k, v in r.items() if k != "params"} for r in ROWS]  # params_every > 1
    segment = Segment(10, 15, CHECKPOINTS[10])
    assert segment_divergence(sparse, ROWS[:15], segment) is None
    assert segment_divergence(sparse, [*ROWS[:13], _row(14, loss="0x1p+9"), ROWS[14]], segment) is not None


def test_checkpoint_steps_of_each_kind(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    for name in ("step-00000010.pt", "step-00000020.pt", "other.pt"):
        (tmp_path / "checkpoints" / name).write_bytes(b"x")
    assert sorted(checkpoint_steps(tmp_path, RECORDER)) == [10, 20]
    (tmp_path / "ckpt").mkdir()
    for name in ("step=4.ckpt", "epoch=1-step=8.ckpt", "last.ckpt", "epoch_000.ckpt"):
        (tmp_path / "ckpt" / name).write_bytes(b"x")
    assert sorted(checkpoint_steps(tmp_path, LIGHTNING)) == [4, 8]


def test_replay_settings_per_kind() -> None:
    segment = Segment(20, 25, Path("/r/checkpoints/step-00000020.pt"))
    overrides, env = replay_settings("trainer", segment)
    assert overrides == ["training.max_steps=25", "training.resume_from=/r/checkpoints/step-00000020.pt"]
    assert env == {"TWINRUN_STOP_AFTER_STEP": "25"}
    overrides, env = replay_settings("recorder", segment)
    assert overrides == [] and env == {
        "TWINRUN_STOP_AFTER_STEP": "25",
        "TWINRUN_RESUME_FROM": "/r/checkpoints/step-00000020.pt",
    }
    assert replay_settings(LIGHTNING, Segment(0, 5, None)) == ([], {"TWINRUN_STOP_AFTER_STEP": "5"})


def test_verdicts() -> None:
    result = AuditResult(Path("run"), "app", "trainer", Path("w"), 200, 5, 0)
    result.segments = [SegmentResult(Segment(s, s + 5, None), Path(), Path(), 1.0) for s in (0, 100)]
    assert result.verdict == "reproduced (2 segments, 5 steps each, 5% of the run replayed)"
    assert result.exit_code == 0
    late = segment_divergence(ROWS, [*ROWS[:33], _row(34, loss="x")], Segment(30, 35, None))
    early = segment_divergence(ROWS, [*ROWS[:11], _row(12, batch="x")], Segment(10, 15, None))
    result.segments[0].divergence, result.segments[1].divergence = late, early
    assert result.verdict.startswith("not reproduced: step 12 (data order")
    assert result.exit_code == 1
