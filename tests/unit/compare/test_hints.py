"""Hints: identical configs, different runs: the seed, a log line one run alone has, the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import fake_runs as fr
from twinrun.compare.report import render_markdown, render_text
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
