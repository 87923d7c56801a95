"""The byte rule: identical bytes are identical; differing bytes need every byte excused by name."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import fake_runs as fr
from twinrun.compare.judge.accounting import (
    CHUNK,
    PATH,
    WALL_CLOCK,
    account_lines,
    compare_file_bytes,
    describe,
    excuse_by_spans,
)
from twinrun.compare.judge.excuses import csv_excuse, json_excuse, log_excuse, yaml_excuse
from twinrun.compare.read.run_reader import PathMask
from twinrun.compare.report.model import DIFFERENT, IDENTICAL
from twinrun.compare.report.render import render_markdown, render_text
from twinrun.compare.runs import compare_runs

MASK = PathMask(["/runs/a", "/runs/b"])


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Path]:
    return fr.make_twins(tmp_path)


def _entry(report, path: str):
    return next(e for e in report.sections["files"].files if e.path == path)


def test_a_difference_after_the_first_mib_is_found(tmp_path: Path) -> None:
    data = bytes(range(256)) * (CHUNK // 256 * 2)
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(data[: CHUNK + 5] + b"\xff" + data[CHUNK + 6 :])
    raw = compare_file_bytes(tmp_path / "a", tmp_path / "b", "a", "b")
    assert (raw.identical, raw.detail) == (False, f"first differing byte at offset {CHUNK + 5}")
    (tmp_path / "c").write_bytes(data)  # negative control: the same bytes
    assert compare_file_bytes(tmp_path / "a", tmp_path / "c", "a", "c").identical


@pytest.mark.parametrize("cut", [CHUNK, CHUNK + 1, 10])
def test_a_truncated_prefix_of_its_twin_is_different(tmp_path: Path, cut: int) -> None:
    data = b"x" * (2 * CHUNK)
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(data[:cut])
    raw = compare_file_bytes(tmp_path / "a", tmp_path / "b", "a", "b")
    assert (
        not raw.identical
        and raw.detail == f"first differing byte at offset {cut}; sizes {2 * CHUNK} vs {cut}"
    )


def test_files_compared_by_bytes_in_a_run(twins: tuple[Path, Path]) -> None:
    a, b = twins
    data = b"\0" * (CHUNK + 10)
    (a / "blob.dat").write_bytes(data)
    (b / "blob.dat").write_bytes(data)
    assert compare_runs(a, b).exit_code == 0  # negative control
    (b / "blob.dat").write_bytes(data[:-1] + b"\1")
    assert compare_runs(a, b).exit_code == 1
    (b / "blob.dat").write_bytes(data[:CHUNK])
    report = compare_runs(a, b)
    assert report.exit_code == 1 and "offset 1048576" in _entry(report, "blob.dat").detail


def test_describe_names_each_field_in_order() -> None:
    assert describe(Counter({PATH: 2, WALL_CLOCK: 3})) == "3 wall-clock fields, 2 paths"
    assert describe(Counter({PATH: 1})) == "1 path"
    assert describe(Counter()) == ""


def test_account_lines_needs_every_differing_line_excused() -> None:
    excuse = excuse_by_spans([(MASK._pattern, PATH)])
    assert account_lines("x /runs/a\ny\n", "x /runs/b\ny\n", excuse) == Counter({PATH: 1})
    assert (
        account_lines("x /runs/a\ny\n", "x /runs/b\nz\n", excuse)
        == "line 2 differs outside any volatile field"
    )
    assert account_lines("x\n", "x\r\n", excuse) == "line 1: the line endings differ"
    assert account_lines("x\n", "x\nx\n", excuse) == "RUN_A has 1 line, RUN_B 2"
    assert account_lines("x", "x\n", excuse) == "line 1: the line endings differ"


def test_log_excuse_counts_times_and_paths_but_not_values() -> None:
    excuse = log_excuse(MASK)
    a = "[2026-01-01 10:00:00,001][x][INFO] - saved /runs/a/w in (1.20s) loss=0.5"
    b = "[2026-01-01 10:00:07,301][x][INFO] - saved /runs/b/w in (0.90s) loss=0.5"
    assert excuse(a, b) == Counter({WALL_CLOCK: 2, PATH: 1})
    assert excuse(a, b.replace("loss=0.5", "loss=0.6")) is None
    long_a, long_b = "x" * 70_000 + " 1.0s", "x" * 70_000 + " 2.0s"  # over the cap: bytes decide
    assert excuse(long_a, long_b) is None


def test_yaml_excuse_hydra_location_only_in_hydra_record() -> None:
    assert yaml_excuse(MASK, True)("    dir: A", "    dir: B") == Counter({PATH: 1})
    assert yaml_excuse(MASK, False)("    dir: A", "    dir: B") is None
    assert yaml_excuse(MASK, True)("  - hydra.run.dir=A", "  - hydra.run.dir=B") == Counter({PATH: 1})
    assert yaml_excuse(MASK, False)("  - seed=1", "  - seed=2") is None
    assert yaml_excuse(MASK, False)("  - data.root=/d1", "  - data.root=/d2") == Counter({PATH: 1})
    assert yaml_excuse(MASK, False)("start_time: 1", "start_time: 2") == Counter({WALL_CLOCK: 1})
    assert yaml_excuse(MASK, False)("lr: 1", "lr: 2") is None
    assert yaml_excuse(MASK, False)("start_time: 1", "stop_time: 2") is None  # another key


def test_json_and_csv_excuses_only_wall_clock_values() -> None:
    excuse = json_excuse(MASK)
    assert excuse('{"loss": 1, "time": 1.5}', '{"loss": 1, "time": 2.5}') == Counter({WALL_CLOCK: 1})
    assert excuse('{"loss": 1, "time": 1.5}', '{"loss": 2, "time": 2.5}') is None
    assert excuse('{"loss": 1, "time": 1.5}', '{"loss": 1 , "time": 2.5}') is None  # spacing is bytes
    header = "epoch,loss,time"
    csv_x = csv_excuse(MASK, header, ",")
    assert csv_x("1,0.5,3.2", "1,0.5,3.9") == Counter({WALL_CLOCK: 1})
    assert csv_x("1,0.5,3.2", "1,0.6,3.9") is None
    assert csv_x('1,"0.5",3.2', '1,"0.5",3.9') is None  # not written the way csv writes it
    assert csv_x(header, "epoch,loss,timx") is None  # the header is no volatile field


def test_real_twins_are_identical_with_what_was_masked_reported(twins: tuple[Path, Path]) -> None:
    a, b = twins
    report = compare_runs(a, b)
    assert report.exit_code == 0, render_text(report)
    files = report.sections["files"]
    assert "masked: " in files.summary and "wall-clock field" in files.summary and "path" in files.summary
    log = _entry(report, "vae_mnist.log")
    assert log.masked.get(WALL_CLOCK) and log.masked.get(PATH) and "masked:" in log.detail
    tree = json.loads(json.dumps(report.to_dict()))
    entries = {e["path"]: e for e in tree["sections"]["files"]["files"]}
    assert entries["vae_mnist.log"]["masked"] == log.masked
    assert "masked: " in render_markdown(report) and "masked: " in render_text(report)


def test_a_reader_that_sees_no_difference_cannot_excuse_bytes(twins: tuple[Path, Path]) -> None:
    a, b = twins
    log = b / "vae_mnist.log"
    log.write_text(log.read_text().replace("\n", "\r\n"))  # the normalized lines are the same
    report = compare_runs(a, b)
    entry = _entry(report, "vae_mnist.log")
    assert (report.exit_code, entry.verdict) == (1, DIFFERENT)
    assert "line endings differ" in entry.detail and report.sections["logs"].status == DIFFERENT


def test_a_yaml_reordered_or_retyped_is_different(twins: tuple[Path, Path]) -> None:
    a, b = twins
    for run in twins:
        (run / "extra.yaml").write_text("a: 1\nb: 2\n")
    assert _entry(compare_runs(a, b), "extra.yaml").verdict == IDENTICAL  # control
    (b / "extra.yaml").write_text("b: 2\na: 1\n")
    assert compare_runs(a, b).exit_code == 1
    (a / "extra.yaml").write_text("1: x\nstart_time: 1\n")
    (b / "extra.yaml").write_text("'1': x\nstart_time: 2\n")  # a masked time beside a retyped key
    entry = _entry(compare_runs(a, b), "extra.yaml")
    assert entry.verdict == DIFFERENT and "1 (int)" in entry.detail


def test_metrics_and_trace_files_are_held_to_the_byte_rule(twins: tuple[Path, Path]) -> None:
    a, b = twins
    text = (b / "metrics.jsonl").read_text()
    (b / "metrics.jsonl").write_text(text.replace(", ", ",  ", 1))  # same values, other bytes
    report = compare_runs(a, b)
    assert report.sections["metrics"].status == IDENTICAL and report.exit_code == 1
    assert _entry(report, "metrics.jsonl").verdict == DIFFERENT


def test_a_duplicate_yaml_key_makes_the_run_unusable(twins: tuple[Path, Path]) -> None:
    from twinrun.compare.read.run_reader import UnusableRunError

    a, b = twins
    (a / "extra.yaml").write_text("a: 1\n")
    (b / "extra.yaml").write_text("a: 1\na: 1\n")
    with pytest.raises(UnusableRunError, match="duplicate key 'a'") as info:
        compare_runs(a, b)
    assert "\n" not in str(info.value)


def test_metrics_nan_of_another_sign_is_a_difference(twins: tuple[Path, Path]) -> None:
    from twinrun.compare.judge.sections import as_decimal, compare_metrics
    from twinrun.compare.read.run_reader import open_run
    from twinrun.record import runs

    a, b = twins
    nan, negative = runs.exact(float("nan")), "nan:0xfff8000000000000"
    for run, value in ((a, nan), (b, negative)):
        runs.write_jsonl(run / "metrics.jsonl", [{"epoch": 1, "step": 1, "loss": value}])
    sec = compare_metrics(open_run(a), open_run(b))
    assert sec.status == DIFFERENT and sec.first is not None and sec.first.keys[0].key == "loss"
    assert as_decimal(negative) != as_decimal(negative)  # a NaN, shown as one
    runs.write_jsonl(b / "metrics.jsonl", [{"epoch": 1, "step": 1, "loss": nan}])
    assert compare_metrics(open_run(a), open_run(b)).status == IDENTICAL  # negative control


def test_a_tensor_reader_that_names_its_masked_fields_is_held_to_the_byte_rule(
    twins: tuple[Path, Path], monkeypatch
) -> None:
    """The extension point for the torch/pickle readers: ``section.masked`` (field -> count)."""
    import torch

    from twinrun.compare.judge import tensors
    from twinrun.compare.judge.accounting import RESOLVER_CACHE

    a, b = twins
    for run, pad in ((a, 0), (b, 1)):
        torch.save({"w": torch.ones(2), "pad": "x" * pad}, run / "state.pt")
    real = tensors.compare_tensor_pair

    def reading(found: Counter[str] | None):
        def pair(*args, **kwargs):
            sec = real(*args, **kwargs)
            sec.status, sec.masked = IDENTICAL, found  # the reader "sees" no difference
            return sec

        return pair

    monkeypatch.setattr(tensors, "compare_tensor_pair", reading(Counter()))
    entry = _entry(compare_runs(a, b), "state.pt")
    assert entry.verdict == DIFFERENT and "the bytes decide" in entry.detail
    monkeypatch.setattr(tensors, "compare_tensor_pair", reading(Counter({RESOLVER_CACHE: 1})))
    entry = _entry(compare_runs(a, b), "state.pt")
    assert (entry.verdict, entry.masked) == (IDENTICAL, {RESOLVER_CACHE: 1})
    assert "masked: 1 resolver cache" in entry.detail
