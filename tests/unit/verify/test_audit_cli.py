"""``twinrun audit``'s reports and the environment of its replays (no process started here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twinrun.cli import main as twinrun
from twinrun.verify.audit import AuditResult, Segment, SegmentResult, segment_divergence
from twinrun.verify.audit_cli import render, render_html
from twinrun.verify.audit_run import replay_env


def _result(differs: bool) -> AuditResult:
    result = AuditResult(Path("/runs/long"), "mnist-classifier", "trainer", Path("/w"), 100, 5, 0)
    rows = [{"step": s, "batch": "b", "loss": "0x1p+0"} for s in range(1, 101)]
    replayed = [*rows[:51], {"step": 52, "batch": "other", "loss": "0x1p+0"}, *rows[52:]] if differs else rows
    for start in (0, 50):
        segment = Segment(start, start + 5, None if start == 0 else Path("/runs/long/checkpoints/c.pt"))
        div = segment_divergence(rows, replayed, segment)
        result.segments.append(SegmentResult(segment, Path(f"/w/segment-{start}"), Path("o"), 1.5, div))
    return result


def test_the_reports_say_the_verdict_and_every_segment() -> None:
    text = render(_result(False))
    assert text.startswith("twinrun audit: reproduced (2 segments, 5 steps each, 10% of the run replayed)")
    assert "steps 51-55" in text and "checkpoint at step 50" in text
    failed = render(_result(True), "markdown")
    assert failed.startswith(
        "## twinrun audit: not reproduced: step 52 (data order) in the replay of steps 51-55"
    )
    assert "| steps 1-5 | the start | reproduced |" in failed
    tree = json.loads(render(_result(True), "json"))
    assert (tree["exit_code"], tree["reproduced"], tree["fraction_replayed"]) == (1, False, 0.1)
    assert tree["segments"][1]["divergence"]["cause"] == "data order"
    page = render_html(_result(True))
    assert "not reproduced" in page and "<script" not in page


def test_a_replay_gets_the_recorded_hash_seed_and_no_stale_request(monkeypatch) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", "77")
    monkeypatch.setenv("TWINRUN_RESUME_FROM", "/stale.pt")
    env = replay_env("5", {"TWINRUN_STOP_AFTER_STEP": "9"})
    assert env["PYTHONHASHSEED"] == "5" and env["TWINRUN_STOP_AFTER_STEP"] == "9"
    assert "TWINRUN_RESUME_FROM" not in env
    assert "PYTHONHASHSEED" not in replay_env(None, {})  # the run had none: random, as it was


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segments", "0"], "--segments 0: give a number >= 1"),
        (["--jobs", "0"], "--jobs 0: give a number >= 1"),
        (["--timeout", "-1"], "--timeout -1"),
        (["--json", "--markdown"], "not allowed with argument"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(args, message, tmp_path, capsys) -> None:
    assert twinrun(["audit", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_run_without_checkpoints_cannot_be_audited(tmp_path, capsys) -> None:
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("[]\n")
    (tmp_path / "trace.jsonl").write_text("".join(f'{{"step": {s}}}\n' for s in range(1, 5)))
    assert twinrun(["audit", str(tmp_path), "--app", "vae-mnist"]) == 2
    err = capsys.readouterr().err
    assert "cannot be audited: it kept no checkpoint before its last step" in err
    assert len(err.strip().splitlines()) == 1


def test_a_workdir_of_an_earlier_audit_is_refused(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "step-00000002.pt").write_bytes(b"x")
    (run / "trace.jsonl").write_text("".join(f'{{"step": {s}}}\n' for s in range(1, 5)))
    (tmp_path / "w" / "segment-0").mkdir(parents=True)
    assert twinrun(["audit", str(run), "--app", "vae-mnist", "--workdir", str(tmp_path / "w")]) == 2
    assert "already holds segment-0" in capsys.readouterr().err
