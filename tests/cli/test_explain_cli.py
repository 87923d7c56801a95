"""``twinrun verify --explain --html`` and ``twinrun explain`` on a planted op fault, the runs and replays in
real processes. The ``twinrun`` commands themselves run in this process (``twinrun.cli.main``): each
would otherwise be one more interpreter importing torch, and ``twinrun`` as a real process is covered
by test_verify_cli.py and test_any_app_cli.py."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import pytest

APP = Path(__file__).with_name("faulty_vae_app.py")
SIZE = ("data=synthetic", "data.train_samples=96", "data.test_samples=16", "device=cpu")
OVERRIDES = (*SIZE, "training.epochs=2", "training.batch_size=48", "seed=3")  # 2 steps an epoch
FAULT = {"TWINRUN_TEST_FAULT_STEP": "4", "TWINRUN_TEST_FAULT_RUN": "2"}  # run 2, step 4, to_mu's addmm


def twinrun(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``twinrun ARGS`` in ``cwd`` with ``env`` added, run by ``twinrun.cli.main`` in this process; the
    apps it starts (runs, replays) are fresh processes that inherit ``env``."""
    from twinrun.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        for name, value in {"TMPDIR": str(cwd), **(env or {})}.items():
            patch.setenv(name, value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    return subprocess.CompletedProcess(["twinrun", *args], code, out.getvalue(), err.getvalue())


_RUNS: dict[str, tuple[subprocess.CompletedProcess[str], Path]] = {}


@pytest.fixture
def explained(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One ``verify --explain`` per worker process, whatever other modules' tests run in between (a
    module-scoped fixture would be set up again after them)."""
    if "verify" not in _RUNS:
        cwd = tmp_path_factory.mktemp("explain")
        args = (
            "verify",
            str(APP),
            *OVERRIDES,
            "--explain",
            "--json",
            "--html",
            "report.html",
            "--workdir",
            "w",
        )
        _RUNS["verify"] = (twinrun(*args, cwd=cwd, env=FAULT), cwd)
    return _RUNS["verify"]


def test_verify_explain_names_the_planted_op(explained) -> None:
    done, cwd = explained
    assert done.returncode == 1, done.stderr[-3000:]
    # each replay's command is printed before it runs (stderr: stdout is the JSON)
    shown = [line for line in done.stderr.splitlines() if line.startswith("replay of ")]
    assert len(shown) == 2 and all("+explain_step=4" in line for line in shown), done.stderr[-3000:]
    tree = json.loads(done.stdout)
    assert (tree["divergence"]["step"], tree["divergence"]["cause"]) == (4, "computation")
    explain = tree["explain"]
    assert explain["problem"] is None  # both replays reproduced their run's step 4
    op = explain["first_differing_op"]["a"]
    assert (op["op"], op["module"], op["phase"]) == ("aten::addmm", "to_mu", "forward")
    assert [r["from_step"] for r in explain["replays"]] == [2, 2]  # the epoch-1 checkpoints
    # the op records are kept beside the runs, so two machines' replays can be compared later
    assert (cwd / "w" / "run-1" / "ops" / "step-4.jsonl").is_file()


def test_verify_html_names_the_divergent_step(explained) -> None:
    _, cwd = explained
    page = (cwd / "report.html").read_text()
    assert 'id="divergence" data-step="4"' in page and "first divergent step 4" in page
    assert "<script" not in page


def test_twinrun_explain_on_the_kept_runs(explained) -> None:
    _, cwd = explained
    runs = cwd / "w"
    done = twinrun("explain", "run-1", "run-2", "--app", str(APP), "--workdir", "again", cwd=runs, env=FAULT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 4, first differing op: aten::addmm in to_mu (forward)" in done.stdout
    # control: a run against itself has nothing to explain
    same = twinrun("explain", "run-1", "run-1", cwd=runs)
    assert same.returncode == 2 and "same directory" in same.stderr


def test_compare_html_writes_the_page(explained) -> None:
    _, cwd = explained
    done = twinrun("compare", "w/run-1", "w/run-2", "--html", "compare.html", cwd=cwd)
    assert done.returncode == 1
    assert 'data-step="4"' in (cwd / "compare.html").read_text()
    bad = twinrun("compare", "w/run-1", "w/run-2", "--html", "w", cwd=cwd)  # a directory is in the way
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["twinrun compare: error: cannot write w: Is a directory"]
