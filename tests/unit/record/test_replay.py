"""The replay protocol of Recorder loops (``twinrun audit``): save, resume where told, stop where told."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from twinrun.record.recorder import RecorderError
from twinrun.record.replay import RESUME_ENV, STOP_ENV, replay_request

_SPEC = importlib.util.spec_from_file_location(
    "recorder_loop_app", Path(__file__).resolve().parents[2] / "apps" / "recorder_loop" / "train.py"
)
app = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(app)  # type: ignore[union-attr]
CFG = OmegaConf.create({"seed": 0, "epochs": 2, "batch": 8, "samples": 40, "lr": 0.05, "ckpt_every": 3})


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "trace.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("full")
    app.train(CFG, str(run))
    return run


def test_a_replay_from_a_checkpoint_repeats_the_recorded_rows(full_run, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(RESUME_ENV, str(full_run / "checkpoints" / "step-00000006.pt"))  # mid-epoch 2
    monkeypatch.setenv(STOP_ENV, "8")
    app.train(CFG, str(tmp_path))
    replayed = rows(tmp_path)
    assert [r["step"] for r in replayed] == list(range(1, 9))  # restored rows, then steps 7 and 8
    assert replayed[6:8] == rows(full_run)[6:8]


def test_negative_control_a_changed_model_changes_the_replayed_rows(full_run, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(RESUME_ENV, str(full_run / "checkpoints" / "step-00000006.pt"))
    monkeypatch.setenv(STOP_ENV, "8")
    monkeypatch.setenv("TWINRUN_TEST_NOISE_FROM", "7")
    app.train(CFG, str(tmp_path))
    replayed, recorded = rows(tmp_path), rows(full_run)
    assert replayed[6]["params"] != recorded[6]["params"] and replayed[7]["loss"] != recorded[7]["loss"]


def test_a_loop_that_does_not_resume_fails_in_one_line(full_run, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(RESUME_ENV, str(full_run / "checkpoints" / "step-00000003.pt"))
    monkeypatch.setattr(app.Recorder, "resume_point", lambda self, path=None: None)  # the loop ignores it
    with pytest.raises(RecorderError, match=r"did not resume.*cannot resume") as raised:
        app.train(CFG, str(tmp_path))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "trace.jsonl").exists()  # nothing half-written


def test_a_loop_that_does_not_stop_fails_before_the_next_step(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(STOP_ENV, "2")
    monkeypatch.setattr(app.Recorder, "stop_requested", property(lambda self: False))
    with pytest.raises(RecorderError, match="went on to step 3"):
        app.train(CFG, str(tmp_path))


def test_requests_read_from_the_environment() -> None:
    assert replay_request({}) == replay_request({RESUME_ENV: "", STOP_ENV: ""})
    request = replay_request({RESUME_ENV: "/c/step-1.pt", STOP_ENV: "7"})
    assert (str(request.resume_from), request.stop_after) == ("/c/step-1.pt", 7)
    for bad in ("0", "x", "-3"):
        with pytest.raises(RecorderError, match=STOP_ENV):
            replay_request({STOP_ENV: bad})
