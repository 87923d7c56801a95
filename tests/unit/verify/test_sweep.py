"""``twinrun.verify.sweep``: finding and matching sweep points, the summary table, error paths.

No training and no Hydra here: the "app" is a tiny script that lays out a sweep directory the way
Hydra's multirun does (``<sweep dir>/<job num>/.hydra/overrides.yaml``) and writes a one-tensor
``weights.safetensors`` per point with numpy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from twinrun import cli
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, Divergence, Report, WeightsSection
from twinrun.verify.apps import CompareOptions, VerifyError
from twinrun.verify.sweep import (
    PointResult,
    SweepPoint,
    find_points,
    match_points,
    point_labels,
    verify_sweep,
)
from twinrun.verify.sweep_render import render, to_dict

# Expands the first key=a,b,c override into points like Hydra's basic sweeper. Point values listed in
# entropy=... draw their weights from OS entropy (the negative control); drop_on_hash=N leaves out the
# last point when PYTHONHASHSEED is N (a sweep that does not produce the same points).
FAKE_SWEEP_APP = """\
import os
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

assert sys.argv[1] == "--multirun", sys.argv
args = [a for a in sys.argv[2:]]
opts = dict(a.split("=", 1) for a in args)
sweep_dir = Path(opts.pop("hydra.sweep.dir"))
key, values = args[0].split("=", 1)
entropy = set(opts.pop("entropy", "").split(","))
drop = opts.pop("drop_on_hash", None)
outside = opts.pop("outside", None)  # write into the working directory: "same" or "entropy" bytes
if outside is not None:
    Path("saved.bin").write_bytes(b"same" if outside == "same" else os.urandom(8))
rest = [f"{k}={v}" for k, v in opts.items() if k != key]
values = values.split(",")
if drop is not None and os.environ["PYTHONHASHSEED"] == drop:
    values = values[:-1]
sweep_dir.mkdir(parents=True, exist_ok=True)
launcher = "hydra:\\n  launcher:\\n    _target_: fake.launchers.FakeLauncher\\n"
(sweep_dir / "multirun.yaml").write_text(launcher)
for num, value in enumerate(values):
    job = sweep_dir / f"job-{num:02d}"
    (job / ".hydra").mkdir(parents=True)
    overrides = [f"{key}={value}", *rest]
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\\n" for o in overrides))
    (job / ".hydra" / "hydra.yaml").write_text(f"hydra:\\n  job:\\n    num: {num}\\n")
    rng = np.random.default_rng() if value in entropy else np.random.default_rng(int(float(value) * 1000))
    save_file({"w": rng.standard_normal(4).astype(np.float32)}, str(job / "weights.safetensors"))
"""


@pytest.fixture
def fake_sweep_app(tmp_path: Path) -> Path:
    path = tmp_path / "fake_sweep.py"
    path.write_text(FAKE_SWEEP_APP)
    return path


def make_point(sweep: Path, subdir: str, overrides: list[str], num: int | None) -> Path:
    job = sweep / subdir
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if num is not None:
        (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    return job


def test_points_are_found_at_any_subdir_and_ordered_by_job_number(tmp_path: Path) -> None:
    # hydra.sweep.subdir may be anything (here nested, override-named); .submitit holds no job.
    make_point(tmp_path, "lr=0.1/model=b", ["lr=0.1", "model=b"], 3)
    make_point(tmp_path, "lr=0.2/model=a", ["lr=0.2", "model=a"], 0)
    make_point(tmp_path, "10", ["lr=0.3"], 10)
    (tmp_path / ".submitit" / "123").mkdir(parents=True)
    points = find_points(tmp_path)
    assert [p.num for p in points] == [0, 3, 10]
    assert points[0] == SweepPoint(0, ("lr=0.2", "model=a"), tmp_path / "lr=0.2" / "model=a")


def test_a_missing_or_odd_hydra_yaml_gives_no_job_number(tmp_path: Path) -> None:
    make_point(tmp_path, "a", ["x=1"], None)  # no hydra.yaml
    odd = make_point(tmp_path, "b", ["x=2"], None)
    (odd / ".hydra" / "hydra.yaml").write_text("hydra:\n")  # hydra: null
    make_point(tmp_path, "c", ["x=3"], 0)
    found = [(p.num, p.overrides) for p in find_points(tmp_path)]
    assert found == [(-1, ("x=1",)), (-1, ("x=2",)), (0, ("x=3",))]


def test_a_broken_overrides_file_is_unusable(tmp_path: Path) -> None:
    job = make_point(tmp_path, "0", ["a=1"], 0)
    (job / ".hydra" / "overrides.yaml").write_text("a: [1\n")
    with pytest.raises(VerifyError, match="cannot be read"):
        find_points(tmp_path)
    (job / ".hydra" / "overrides.yaml").write_text("a: 1\n")
    with pytest.raises(VerifyError, match="expected a list of overrides"):
        find_points(tmp_path)


def test_points_match_by_overrides_not_by_directory(tmp_path: Path) -> None:
    a = [SweepPoint(0, ("x=1",), tmp_path / "a0"), SweepPoint(1, ("x=2",), tmp_path / "a1")]
    # Sweep 2 ran the points in another order and lacks one, and has one of its own.
    b = [SweepPoint(0, ("x=2",), tmp_path / "b0"), SweepPoint(1, ("x=3",), tmp_path / "b1")]
    matched = match_points([a, b])
    assert [[p.run_dir.name if p else None for p in group] for group in matched] == [
        ["a0", None],
        ["a1", "b0"],
        [None, "b1"],
    ]


def test_a_repeated_point_is_told_apart_by_its_occurrence(tmp_path: Path) -> None:
    a = [SweepPoint(0, ("x=1",), tmp_path / "a0"), SweepPoint(1, ("x=1",), tmp_path / "a1")]
    b = [SweepPoint(0, ("x=1",), tmp_path / "b0"), SweepPoint(1, ("x=1",), tmp_path / "b1")]
    assert [[p.run_dir.name for p in g] for g in match_points([a, b])] == [["a0", "b0"], ["a1", "b1"]]


def test_labels_keep_what_tells_points_apart() -> None:
    labels = point_labels([["lr=0.1", "model=a", "epochs=1"], ["lr=0.2", "model=a", "epochs=1"]])
    assert labels == ["lr=0.1", "lr=0.2"]
    assert point_labels([["lr=0.1", "epochs=1"]]) == ["lr=0.1 epochs=1"]  # one point: all of them
    assert point_labels([[], []]) == ["(no overrides)", "(no overrides)"]


def test_first_divergence_column() -> None:
    weights = WeightsSection(status=DIFFERENT, summary="1 of 1 tensors differ")
    report = Report("a", "b", {"weights": weights}, Divergence(step=3, epoch=1, cause="data order"))
    point = PointResult("x=1", 0, ("x=1",), [Path("a"), Path("b")], {(1, 2): report})
    assert point.verdict == DIFFERENT and point.first_divergence() == "step 3 (epoch 1): data order"
    report.divergence = None
    assert point.first_divergence() == "differs in weights"
    weights.status = IDENTICAL
    assert point.verdict == IDENTICAL and point.first_divergence() == "-"
    missing = PointResult("x=2", 1, ("x=2",), [Path("a"), None])
    assert missing.verdict == DIFFERENT and missing.first_divergence() == "no run in sweep-2"


def test_identical_sweep_gives_one_table(fake_sweep_app: Path, tmp_path: Path) -> None:
    result = verify_sweep(str(fake_sweep_app), ["x=1,2,3", "epochs=1"], workdir=tmp_path / "w")
    assert result.exit_code == 0 and result.launcher == "FakeLauncher"
    assert [p.label for p in result.points] == ["x=1", "x=2", "x=3"]
    assert [r.run_dir.name for r in result.sweeps] == ["sweep-1", "sweep-2"]
    text = render(result)
    assert text.startswith("twinrun verify: identical (3 points x 2 sweeps of ")
    assert "#1 x=2  identical  -" in text
    tree = json.loads(render(result, "json"))
    assert tree["format"] == "twinrun-sweep/1" and tree["exit_code"] == 0 and tree["report"] is None
    assert tree["points"][0]["run_dirs"] == [str(tmp_path / "w" / f"sweep-{i}" / "job-00") for i in (1, 2)]
    assert "| #2 x=3 | identical | - |" in render(result, "markdown")


def test_a_point_that_differs_is_named(fake_sweep_app: Path, tmp_path: Path) -> None:
    result = verify_sweep(str(fake_sweep_app), ["x=1,2,3", "entropy=2"], workdir=tmp_path / "w")
    assert result.exit_code == 1
    assert [p.verdict for p in result.points] == [IDENTICAL, DIFFERENT, IDENTICAL]
    text = render(result)
    assert re.search(r"#1 x=2  different  differs in (files, )?weights\n", text)
    assert "first point that differs: #1 x=2" in text and "twinrun compare:" in text
    tree = to_dict(result)
    assert tree["verdict"] == DIFFERENT and "weights" in tree["points"][1]["differs_in"]
    assert tree["report"]["sections"]["weights"]["status"] == DIFFERENT
    assert "❌" in render(result, "markdown")


def test_a_point_missing_from_one_sweep_is_a_difference(fake_sweep_app: Path, tmp_path: Path) -> None:
    result = verify_sweep(str(fake_sweep_app), ["x=1,2", "drop_on_hash=2"], workdir=tmp_path / "w")
    assert result.exit_code == 1
    assert result.points[1].missing_in == [2]
    assert "no run in sweep-2" in render(result)


def test_a_sweep_without_points_is_unusable(tmp_path: Path) -> None:
    app = tmp_path / "no_points.py"
    app.write_text("import sys\n")
    with pytest.raises(VerifyError, match=r"sweep-1 holds no job with \.hydra/overrides\.yaml"):
        verify_sweep(str(app), ["x=1,2"], workdir=tmp_path / "w")


def test_verify_controls_the_sweep_directory(fake_sweep_app: Path, tmp_path: Path) -> None:
    with pytest.raises(VerifyError, match="use --workdir"):
        verify_sweep(str(fake_sweep_app), ["x=1,2", "hydra.sweep.dir=/tmp/x"], workdir=tmp_path)
    (tmp_path / "w" / "sweep-2").mkdir(parents=True)
    with pytest.raises(VerifyError, match="already holds sweep-2"):
        verify_sweep(str(fake_sweep_app), ["x=1,2"], workdir=tmp_path / "w")
    with pytest.raises(VerifyError, match="too few"):
        verify_sweep(str(fake_sweep_app), ["x=1,2"], runs=1, workdir=tmp_path / "v")


def test_cli_sweep_and_option_errors(
    fake_sweep_app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = str(tmp_path / "w")
    assert cli.main(["verify", str(fake_sweep_app), "-m", "x=1,2", "--workdir", workdir, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["points"][1]["point"] == "x=2"
    assert cli.main(["verify", "-m", str(fake_sweep_app), "x=1", "--nproc-per-node", "2"]) == 2
    assert "-m and --nproc-per-node exclude each other" in capsys.readouterr().err
    assert cli.main(["verify", str(fake_sweep_app), "x=1", "--nproc-per-node", "0"]) == 2
    assert "--nproc-per-node 0" in capsys.readouterr().err


def test_options_reach_every_point(
    fake_sweep_app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import twinrun.verify.sweep as sweep_module

    seen = []
    real = sweep_module.compare_pair

    def spy(a: Path, b: Path, app: str, options: CompareOptions) -> Report:
        seen.append(options)
        return real(a, b, app, options)

    monkeypatch.setattr(sweep_module, "compare_pair", spy)
    options = CompareOptions(trust_pickle=True, ignore=("*.tmp",))
    result = verify_sweep(str(fake_sweep_app), ["lr=0.1,0.2"], workdir=tmp_path / "w", options=options)
    assert result.exit_code == 0 and seen == [options, options]


def test_a_sweep_past_its_timeout_is_stopped_and_named(tmp_path: Path) -> None:
    app = tmp_path / "hang.py"
    app.write_text("import time\nprint('launching 2 jobs', flush=True)\ntime.sleep(60)\n")
    with pytest.raises(VerifyError) as caught:
        verify_sweep(str(app), ["lr=0.1,0.2"], workdir=tmp_path / "w", timeout=1)
    first, *rest = str(caught.value).splitlines()
    assert first.startswith("sweep 1 did not finish within --timeout 1s and was stopped")
    assert "    launching 2 jobs" in rest


def test_files_a_sweep_writes_outside_its_directory_are_one_more_row(
    fake_sweep_app: Path, tmp_path: Path
) -> None:
    """Rule 3 for sweeps: each sweep's outside/ is compared across sweeps."""
    same = verify_sweep(str(fake_sweep_app), ["x=1,2", "outside=same"], workdir=tmp_path / "s", cwd=tmp_path)
    assert same.exit_code == 0 and same.points[-1].label == "(files written outside the run directories)"
    assert (tmp_path / "s" / "sweep-2" / "outside" / "saved.bin").is_file()
    assert not (tmp_path / "saved.bin").exists()
    assert "(files written outside the run directories)  identical" in render(same)
    noisy = verify_sweep(
        str(fake_sweep_app), ["x=1,2", "outside=entropy"], workdir=tmp_path / "n", cwd=tmp_path
    )
    assert noisy.exit_code == 1 and noisy.points[-1].verdict == DIFFERENT
    assert [p.verdict for p in noisy.points[:-1]] == [IDENTICAL, IDENTICAL]
    assert "first point that differs: (files written outside the run directories)" in render(noisy)
