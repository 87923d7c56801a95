"""``twinrun audit`` on real runs of the three app kinds, with faults planted at known steps.

Each faulty run is audited with two segments, the first (from the start, before the fault: a replay that
must reproduce, the negative control) and the last (after it: a replay that must not); a clean Recorder
loop is reproduced. The audits run
in this process (``twinrun.cli.main``); the runs and the replays are fresh processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from twinrun.cli import main as twinrun

ROOT = Path(__file__).resolve().parents[2]
RECORDER_APP = ROOT / "tests" / "apps" / "recorder_loop" / "train.py"
LIGHTNING_APP = ROOT / "tests" / "apps" / "lightning_audit" / "train.py"
TRAINER_APP = ROOT / "benchmarks" / "audit_faults_app.py"
NOISE = "TWINRUN_TEST_NOISE_FROM"
TRAINER = (  # 4 steps an epoch, 3 epochs, a checkpoint at every epoch end
    "data=synthetic",
    "data.train_samples=64",
    "data.test_samples=16",
    "device=cpu",
    "model=cnn_small",
    "training.epochs=3",
    "training.batch_size=16",
    "checkpoint.keep_last=null",
)


def launch(app: Path, run_dir: Path, *overrides: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [sys.executable, str(app), *overrides, f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONHASHSEED": "5", **(env or {})},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def audit(capsys, run: Path, app: Path, *args: str) -> tuple[int, dict, str]:
    code = twinrun(["audit", str(run), "--app", str(app), "--json", "--jobs", "2", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


@pytest.fixture(scope="module")
def recorder_runs(tmp_path_factory) -> Path:
    """A clean run of the Recorder loop: 20 steps, a checkpoint every 5 (its replays with a planted
    fault: tests/unit/record/test_replay.py)."""
    work = tmp_path_factory.mktemp("recorder")
    launch(RECORDER_APP, work / "clean")
    return work


def test_a_clean_recorder_loop_is_reproduced(recorder_runs, capsys, tmp_path) -> None:
    code, report, _ = audit(
        capsys,
        recorder_runs / "clean",
        RECORDER_APP,
        "--segments",
        "2",
        "--steps",
        "2",
        "--workdir",
        str(tmp_path),
    )
    assert code == 0, report
    assert report["verdict"] == "reproduced (2 segments, 2 steps each, 20% of the run replayed)"
    assert [(s["start"], s["stop"]) for s in report["segments"]] == [(0, 2), (15, 17)]


def test_recorded_overrides_that_choose_code_never_run(recorder_runs, capsys, tmp_path) -> None:
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(recorder_runs / "clean"), str(run)], check=True)
    marker = tmp_path / "marker"
    planted = ["+hydra.callbacks.m._target_=builtins.open", f"+hydra.callbacks.m._args_=[{marker},w]"]
    overrides = run / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump([*(yaml.safe_load(overrides.read_text()) or []), *planted]))
    code = twinrun(["audit", str(run), "--app", str(RECORDER_APP), "--workdir", str(tmp_path / "w")])
    _, err = capsys.readouterr()
    assert code == 2 and "refusing recorded override" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not list((tmp_path / "w").glob("segment-*"))
    # negative control: the same overrides given to a Hydra app do run code
    bare = tmp_path / "bare.py"
    bare.write_text(
        "import hydra\n@hydra.main(version_base=None)\ndef main(cfg):\n    pass\nmain()\n", encoding="utf-8"
    )
    subprocess.run(
        [sys.executable, str(bare), *planted, f"hydra.run.dir={tmp_path / 'c'}"],
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert marker.exists()


def test_an_app_that_cannot_resume_says_so_in_one_line(recorder_runs, capsys, tmp_path) -> None:
    code = twinrun(["audit", str(recorder_runs / "clean"), "--app", str(LIGHTNING_APP.parent / "missing.py")])
    assert code == 2
    code = twinrun(["audit", str(tmp_path), "--app", str(RECORDER_APP)])
    _, err = capsys.readouterr()
    assert code == 2 and "trace.jsonl does not exist" in err and len(err.strip().splitlines()) == 2


# The trainer's case is nightly (slow): the PR gate keeps the Lightning case (the callback's resume is only
# exercised here) and the Recorder loop; tests/repro/test_resume.py proves the trainers resume bit-exact.
@pytest.mark.parametrize("kind", [pytest.param("trainer", marks=pytest.mark.slow), "lightning"])
def test_a_fault_planted_after_a_checkpoint_is_caught(kind, capsys, tmp_path, monkeypatch, twinrun_data_root):
    if kind == "trainer":  # twinrun's fit: noise from step 6; checkpoints at steps 4, 8 and 12
        app, env, args = TRAINER_APP, {"TWINRUN_BENCH_FAULT": "noise:6"}, TRAINER
        monkeypatch.setenv("TWINRUN_DATA_ROOT", str(twinrun_data_root))
        expected = (9, "computation", "features.0.weight")
    else:  # Lightning: noise from step 10; checkpoints every 3 steps, the last at step 15
        app, env, args = LIGHTNING_APP, {NOISE: "10"}, ()
        expected = (16, "computation", "net.0.weight")
    launch(app, tmp_path / "run", *args, env=env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, report, _ = audit(
        capsys,
        tmp_path / "run",
        app,
        "--segments",
        "2",
        "--steps",
        "2",
        "--workdir",
        str(tmp_path / "w"),
        "--html",
        str(tmp_path / "audit.html"),
    )
    assert code == 1, report
    assert report["kind"] == kind
    assert [s["reproduced"] for s in report["segments"]] == [True, False]  # before the fault: reproduced
    div = report["segments"][1]["divergence"]
    assert (div["step"], div["cause"], div["parameter"]) == expected
    page = (tmp_path / "audit.html").read_text()
    assert "not reproduced" in page and "<script" not in page
