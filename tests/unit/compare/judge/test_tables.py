"""Tables (CSV/TSV/JSON/JSONL), TensorBoard scalars, images, and the bounded parsing of YAML and JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import fake_runs as fr
from twinrun.compare.judge.tables import compare_tables, is_wall_clock
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.report.model import DIFFERENT, IDENTICAL
from twinrun.compare.report.render import render_text
from twinrun.compare.runs import compare_runs
from twinrun.record import runs

BOMB = "\n".join(
    ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    + [f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
)


@pytest.fixture
def template_twins(tmp_path: Path) -> tuple[Path, Path]:
    return fr.make_template_run(tmp_path / "a"), fr.make_template_run(tmp_path / "b")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_names_the_first_differing_row_and_column(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.csv", "epoch,step,loss,time\n0,0,0.5,100\n0,1,0.25,101\n")
    b = _write(tmp_path / "b.csv", "epoch,step,loss,time\n0,0,0.5,200\n0,1,0.26,201\n")
    result = compare_tables(a, b, "A/m.csv", "B/m.csv")
    assert (result.verdict, result.detail) == (DIFFERENT, "row 2 column loss: 0.25 vs 0.26")
    assert result.wall_clock_note == "wall-clock columns differ (time): not decisive"
    c = _write(tmp_path / "c.csv", "epoch,step,loss,time\n0,0,0.5,300\n0,1,0.25,301\n")
    same = compare_tables(a, c, "A/m.csv", "C/m.csv")
    assert (same.verdict, same.detail) == (IDENTICAL, "2 rows identical") and same.wall_clock_note


def test_csv_rows_and_columns(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.tsv", "step\tloss\n0\t1\n")
    assert compare_tables(a, a, "A", "B").detail == "1 row identical"
    b = _write(tmp_path / "b.tsv", "step\tloss\n0\t1\n1\t2\n")
    assert compare_tables(a, b, "A", "B").detail == "RUN_A has 1 row, RUN_B 2"
    c = _write(tmp_path / "c.tsv", "step\tacc\n0\t1\n")
    assert compare_tables(a, c, "A", "B").detail.startswith(
        "columns differ: only in RUN_A: loss; only in RUN_B: acc"
    )


def test_json_numbers_and_duplicate_keys(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.json", '{"loss": 1e999, "big": 123456789012345678901234567890}')
    b = _write(tmp_path / "b.json", '{"loss": 2e999, "big": 123456789012345678901234567890}')
    assert compare_tables(a, b, "A", "B").detail == "row 1 column loss: 1e999 vs 2e999"
    assert compare_tables(a, a, "A", "B").verdict == IDENTICAL
    c = _write(tmp_path / "c.json", '{"x": 0.10000000000000000001}')
    d = _write(tmp_path / "d.json", '{"x": 0.1}')
    assert compare_tables(c, d, "A", "B").verdict == DIFFERENT  # another text a float cannot tell apart
    dup = _write(tmp_path / "dup.json", '{\n  "loss": 1,\n  "loss": 2\n}')
    with pytest.raises(UnusableRunError, match=r"B line 3: duplicate key 'loss'"):
        compare_tables(a, dup, "A", "B")


def test_wall_clock_columns() -> None:
    assert all(map(is_wall_clock, ["time", "timestamp", "wall_time", "duration", "epoch_time", "created_at"]))
    assert not any(map(is_wall_clock, ["loss", "step", "epoch", "lr", "timesteps_total"]))


def test_metrics_jsonl_duplicate_keys_and_huge_numbers(tmp_path: Path) -> None:
    a, b = fr.make_twins(tmp_path)
    text = (b / runs.METRICS).read_text().splitlines()
    (b / runs.METRICS).write_text(
        text[0] + "\n" + text[1].replace('{"', '{"train_loss": "0x1p+0", "', 1) + "\n"
    )
    with pytest.raises(UnusableRunError, match=r"metrics.jsonl line 2: duplicate key 'train_loss'"):
        compare_runs(a, b)
    for run, number in ((a, "1e999"), (b, "2e999")):
        fr.edit_jsonl(run, runs.METRICS, lambda rows: None)
        (run / runs.METRICS).write_text(
            (run / runs.METRICS).read_text().replace('"epoch": 2', f'"epoch": {number}')
        )
    report = compare_runs(a, b)
    assert report.exit_code == 1 and report.sections["metrics"].first.keys[0].key == "epoch"


@pytest.mark.parametrize("name", [runs.RESOLVED_CONFIG, ".hydra/config.yaml", "csv/hparams.yaml"])
def test_a_yaml_alias_bomb_is_refused_fast(tmp_path: Path, name: str) -> None:
    a, b = fr.make_twins(tmp_path)
    for run in (a, b):
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).write_text("lr: 0.1\n" if run == a else BOMB)
    assert len(BOMB) < 400
    started = time.perf_counter()
    with pytest.raises(UnusableRunError, match=f"{name}: expands to more than"):
        compare_runs(a, b)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        (runs.ENV, "[" * 100_000 + "]" * 100_000, "nested deeper"),
        ("scores.json", "[" * 100_000 + "]" * 100_000, "nested deeper"),
        (runs.RESOLVED_CONFIG, "[" * 5000 + "]" * 5000, "nested deeper than 200 levels"),
        (runs.RESOLVED_CONFIG, "seed: " + "9" * 5000, "Exceeds the limit"),
        (runs.RESOLVED_CONFIG, "a: &x [*x]", "refers to its own ancestor"),
    ],
    ids=["deep-env", "deep-table", "deep-yaml", "huge-int-yaml", "recursive-yaml"],
)
def test_documents_beyond_the_bounds_are_one_line(
    tmp_path: Path, name: str, text: str, fragment: str
) -> None:
    a, b = fr.make_twins(tmp_path)
    for run in (a, b):
        (run / name).write_text(text if run == b else (a / name).read_text() if (a / name).exists() else "{}")
    with pytest.raises(UnusableRunError, match=fragment) as info:
        compare_runs(a, b)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_template_runs_tables_yaml_and_checkpoints(template_twins: tuple[Path, Path]) -> None:
    a, b = template_twins
    report = compare_runs(a, b)
    assert report.exit_code == 0, render_text(report)
    assert report.sections["tensors"].summary.startswith(
        "2 files (checkpoints/epoch_000.ckpt, checkpoints/last.ckpt), "
    )
    assert report.sections["tables"].summary == "1 file (csv/version_0/metrics.csv), 3 rows"
    assert (
        "wall-clock columns differ (time)"
        in {e.path: e.detail for e in report.sections["files"].files}["csv/version_0/metrics.csv"]
    )
    fr.make_template_run(b, losses=(0.5, 0.25, 0.0625))  # negative control: one loss
    report = compare_runs(a, b)
    assert report.exit_code == 1
    (differing,) = report.sections["tables"].differing
    assert differing.startswith(
        "csv/version_0/metrics.csv: row 3 column train_loss: 0.125 vs 0.0625; wall-clock"
    )


def test_images_compare_pixels_not_bytes(tmp_path: Path) -> None:
    a, b = fr.make_twins(tmp_path)
    assert (a / "images/samples.png").read_bytes() != (b / "images/samples.png").read_bytes()
    assert compare_runs(a, b).sections["images"].status == IDENTICAL
    fr.write_png(b / "images/samples.png", pixel=1)
    sec = compare_runs(a, b).sections["images"]
    assert sec.differing == ["images/samples.png: 1 pixel of 48 differ, first at x=3 y=2"]
    (b / "images/samples.png").write_bytes(b"not a png")
    with pytest.raises(UnusableRunError, match=r"samples\.png cannot be decoded as an image"):
        compare_runs(a, b)


def test_tensorboard_scalars_by_folder(template_twins: tuple[Path, Path]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    a, b = template_twins
    for run, host, losses in ((a, "x", (0.5, 0.25)), (b, "y", (0.5, 0.25))):
        writer = SummaryWriter(str(run / "tensorboard" / "version_0"), filename_suffix=host)
        for step, loss in enumerate(losses):
            writer.add_scalar("train/loss", loss, step)
        writer.close()
    names = [p.name for p in (a / "tensorboard" / "version_0").iterdir()]
    assert names != [p.name for p in (b / "tensorboard" / "version_0").iterdir()]  # time, host, pid
    report = compare_runs(a, b)
    assert report.exit_code == 0 and report.sections["scalars"].summary.startswith("1 file (tensorboard/")
    writer = SummaryWriter(str(b / "tensorboard" / "version_0"))
    writer.add_scalar("train/loss", 0.125, 1)  # one point more in B
    writer.close()
    report = compare_runs(a, b)
    assert report.exit_code == 1 and "train/loss at step 1" in report.sections["scalars"].differing[0]


def test_tensorboard_without_its_package_the_bytes_decide(
    template_twins: tuple[Path, Path], monkeypatch
) -> None:
    from twinrun.compare.judge import scalars

    a, b = template_twins
    for run in template_twins:
        (run / "tb").mkdir()
        (run / "tb" / "events.out.tfevents.1.host.1.0").write_bytes(b"x")
    monkeypatch.setattr(scalars, "available", lambda: False)
    assert compare_runs(a, b).sections["scalars"].status == IDENTICAL  # identical bytes need no reader
    (b / "tb" / "events.out.tfevents.1.host.1.0").write_bytes(b"y")
    sec = compare_runs(a, b).sections["scalars"]
    assert sec.status == DIFFERENT and "install twinrun[tensorboard]" in sec.summary


def test_json_report_of_a_table_difference_is_strict(template_twins: tuple[Path, Path]) -> None:
    a, b = template_twins
    (a / "m.json").write_text('{"x": 1e999}')
    (b / "m.json").write_text('{"x": 2e999}')
    tree = json.loads(json.dumps(compare_runs(a, b).to_dict()))
    assert tree["sections"]["tables"]["differing"] == ["m.json: row 1 column x: 1e999 vs 2e999"]


@pytest.mark.parametrize(
    ("name", "text_a", "text_b"),
    [
        ("m.json", '{"a.b": 1, "time": 1}', '{"a": {"b": 1}, "time": 2}'),
        ("m.json", "[5]", '[{"value": 5}]'),
        ("m.jsonl", '{"x": true}\n', '{"x": 1}\n'),
        ("m.csv", "a,a\n1,2\n", "a,a\n2,2\n"),
        ("m.csv", "a,b\n1,(absent)\n", "a,b\n1\n"),
    ],
    ids=["dotted-key-vs-nested", "value-vs-object", "true-vs-1", "duplicate-column", "absent-placeholder"],
)
def test_tables_the_reader_tells_apart(tmp_path: Path, name: str, text_a: str, text_b: str) -> None:
    from twinrun.compare.judge.tables import compare_tables

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / name).write_text(text_a)
    (tmp_path / "b" / name).write_text(text_b)
    result = compare_tables(tmp_path / "a" / name, tmp_path / "b" / name, "a", "b")
    assert result.verdict == DIFFERENT, result
    (tmp_path / "b" / name).write_text(text_a)  # negative control: the same text
    assert compare_tables(tmp_path / "a" / name, tmp_path / "b" / name, "a", "b").verdict == IDENTICAL
