"""Hints: identical configs, different runs: the seed, a log line one run alone has, the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import fake_runs as fr
from twinrun.compare.report.render import render_markdown, render_text
from twinrun.compare.runs import compare_runs
from twinrun.record import runs


@pytest.mark.parametrize(
    ("seed", "hint"),
    [
        (0, "seed is 0: `if cfg.seed:` skips seeding for 0"),
        (None, "seed is null: an app that seeds only `if cfg.seed:` skips seeding"),
    ],
)
def test_seed_hints_when_the_configs_agree_but_the_tensors_differ(tmp_path: Path, seed, hint: str) -> None:
    a = fr.make_template_run(tmp_path / "a", seed=seed, seeded=False)
    b = fr.make_template_run(tmp_path / "b", seed=seed, seeded=False, state_dict=fr.tiny_state_dict(1))
    report = compare_runs(a, b)
    assert report.exit_code == 1 and report.sections["config"].status == "identical"
    assert any(h.startswith(hint) for h in report.hints), report.hints
    assert f"hint: {hint}" in render_text(report) and f"- hint: {hint}" in render_markdown(report)
    fr.make_template_run(b, seed=seed, seeded=False)  # control: identical runs get no hint
    assert compare_runs(a, b).hints == []


def test_a_seed_line_only_one_run_logged(tmp_path: Path) -> None:
    a = fr.make_template_run(tmp_path / "a", seed=7, seeded=True)
    b = fr.make_template_run(tmp_path / "b", seed=7, seeded=False, state_dict=fr.tiny_state_dict(1))
    hints = compare_runs(a, b).hints
    assert hints == ["a log line only RUN_A has (train.log): [src.train][INFO] - Seed set to 7"]


def test_no_seed_key_and_differing_configs(tmp_path: Path) -> None:
    a = fr.make_template_run(tmp_path / "a")
    b = fr.make_template_run(tmp_path / "b", state_dict=fr.tiny_state_dict(1))
    for run in (a, b):
        (run / ".hydra/config.yaml").write_text(yaml.safe_dump({"model": {"hidden": 4}}))
    assert compare_runs(a, b).hints[0].startswith(".hydra/config.yaml has no seed key")
    (b / ".hydra/config.yaml").write_text(yaml.safe_dump({"model": {"hidden": 5}}))
    assert compare_runs(a, b).hints == []  # configs differ: that explains it, no hint


def test_environment_hint(tmp_path: Path) -> None:
    a, b = fr.make_twins(tmp_path)
    fr.flip_bit(b, "encoder.weight")
    runs.write_json(b / runs.ENV, fr.environment(torch="2.13.0"))
    hints = compare_runs(a, b).hints
    assert "the environments differ in torch: bit-identity is not expected across them" in hints


def test_a_message_both_runs_logged_with_other_values_is_no_hint(tmp_path: Path) -> None:
    a = fr.make_template_run(tmp_path / "a", seed=7, seeded=True)
    b = fr.make_template_run(tmp_path / "b", seed=7, seeded=True, state_dict=fr.tiny_state_dict(1))
    for run, digest, loss in ((a, "2f1bdc66771bacfe", 0.25), (b, "364e743871372f36", 0.2501)):
        with (run / "train.log").open("a") as log:
            log.write(f"[src.train][INFO] - weights digest {digest}; loss {loss}\n")
    hints = compare_runs(a, b).hints  # the digest line differs in values only: a consequence, no log hint
    assert not any(h.startswith("a log line") for h in hints), hints
    with (b / "train.log").open("a") as log:  # control: a message only B logged is a hint
        log.write("[src.train][INFO] - deterministic algorithms off\n")
    hint = "a log line only RUN_B has (train.log): [src.train][INFO] - deterministic algorithms off"
    assert compare_runs(a, b).hints == [hint]


def test_no_named_cause_and_no_trace_gets_the_general_hint(tmp_path: Path) -> None:
    """A seed in the config, seeding skipped elsewhere: the user is still told what to fix."""
    a = fr.make_template_run(tmp_path / "a", seed=7, seeded=True)
    b = fr.make_template_run(tmp_path / "b", seed=7, seeded=True, state_dict=fr.tiny_state_dict(1))
    hints = compare_runs(a, b).hints
    assert len(hints) == 1 and hints[0].startswith("the configs are identical but the runs are not")
    assert "twinrun.seed_everything(cfg.seed)" in hints[0]
    fr.make_template_run(b, seed=7, seeded=True)  # control: identical runs get no hint
    assert compare_runs(a, b).hints == []


def _app_run(run: Path, seed: str, log: str, resolved: str | None = None, blob: bytes = b"w") -> Path:
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(f"seed: {seed}\nlr: 0.1\n")
    if resolved is not None:
        (run / "resolved_config.yaml").write_text(f"seed: {resolved}\nlr: 0.1\n")
    (run / "train.log").write_text(f"[2024-01-01 10:00:00,000][__main__][INFO] - {log}\nepoch 1 loss 0.5\n")
    (run / "model.bin").write_bytes(blob)
    return run


def test_a_seed_that_resolves_per_run_is_named_with_both_logged_values(tmp_path: Path) -> None:
    a = _app_run(tmp_path / "a", "${now:%f}", "Setting seed to 146124", blob=b"1")
    b = _app_run(tmp_path / "b", "${now:%f}", "Setting seed to 560711", blob=b"2")
    hints = compare_runs(a, b).hints
    (hint,) = [h for h in hints if "interpolation" in h]
    assert hint.startswith("seed is '${now:%f}', an interpolation that resolves anew in every run")
    assert "146124" in hint and "560711" in hint
    early = [h for h in hints if h.startswith("both runs logged this line with other values")]
    assert early and "Setting seed to 146124" in early[0]  # evidence, not dropped as a consequence
    late = _app_run(tmp_path / "late", "${now:%f}", "Setting seed to 146124", blob=b"2")
    log = late / "train.log"  # control: the same line logged after training started is a consequence
    log.write_text("epoch 1 loss 0.5\n" + log.read_text().replace("Setting seed to 146124", "digest 99"))
    a_log = a / "train.log"
    a_log.write_text("epoch 1 loss 0.5\n" + a_log.read_text().replace("Setting seed to 146124", "digest 12"))
    assert not [h for h in compare_runs(a, late).hints if h.startswith("both runs logged")]
    c = _app_run(tmp_path / "c", "3", "Setting seed to 146124", blob=b"1")  # control: a fixed seed
    d = _app_run(tmp_path / "d", "3", "Setting seed to 146124", blob=b"2")
    assert not [h for h in compare_runs(c, d).hints if "interpolation" in h or "both runs logged" in h]


def test_a_resolved_per_run_seed_shows_both_resolved_values(tmp_path: Path) -> None:
    a = _app_run(tmp_path / "a", "${now:%f}", "start", resolved="146124", blob=b"1")
    b = _app_run(tmp_path / "b", "${now:%f}", "start", resolved="560711", blob=b"2")
    report = compare_runs(a, b)
    assert report.sections["config"].status == "different"
    assert any("(RUN_A: 146124, RUN_B: 560711)" in h for h in report.hints), report.hints


def test_only_non_tensor_values_differing_is_said_exactly(tmp_path: Path) -> None:
    import torch

    runs_ = []
    for name, run_id in (("a", "run-abc"), ("b", "run-xyz")):
        run = tmp_path / name
        run.mkdir()
        torch.save({"model": {"w": torch.ones(3)}, "run_id": run_id}, run / "ckpt.pt")
        runs_.append(run)
    hints = compare_runs(*runs_).hints
    expected = "every tensor is identical; only non-tensor values"
    assert any(h.startswith(expected) and "run-abc" in h for h in hints)
    torch.save({"model": {"w": torch.zeros(3)}, "run_id": "run-xyz"}, runs_[1] / "ckpt.pt")  # control
    assert not any(h.startswith("every tensor is identical") for h in compare_runs(*runs_).hints)
