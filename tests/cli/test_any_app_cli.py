"""``twinrun verify`` on Hydra apps that know nothing of twinrun (``tests/apps/``, written for these tests).

For each app verify runs it twice seeded, where the verdict must be identical (exit 0), and twice with
its seeding off or skipped, where it must be different (exit 1) with the differing tensors named and a
hint printed: each pair is the other's control. An app's two verifies run at the same time, and all
assertions on an app share its four runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[1] / "apps"


@dataclass(frozen=True)
class App:
    """A test app: its script, the overrides that switch its seeding off, what the report must name."""

    name: str
    script: Path
    unseeded: tuple[str, ...]
    files: tuple[str, ...]  # the tensor files it leaves
    tensors: tuple[str, ...]  # tensors that must be named as differing when unseeded
    hint: str  # what the hint says about the seed
    needs: tuple[str, ...] = ()


CASES = [
    App("linreg", APPS / "linreg" / "train.py", ("seeded=false",), ("model.pt",), ("weight",), "seed"),
    App(
        "pickled_module",
        APPS / "pickled_module" / "train.py",
        ("seed=null",),
        ("trained_model.pt",),
        ("encoder.0.weight", "decoder.2.bias"),
        "null",
    ),
    App(
        "lightning_app",
        APPS / "lightning_app" / "src" / "train.py",
        ("seed=0",),
        ("checkpoints/epoch_000.ckpt", "checkpoints/last.ckpt"),
        ("state_dict/net.model.0.weight", "exp_avg"),
        "0",
        needs=("lightning", "tensorboard"),
    ),
]


@dataclass
class Verdicts:
    app: App
    seeded: subprocess.CompletedProcess[str]
    unseeded: subprocess.CompletedProcess[str]
    workdir: Path


def _start(app: App, workdir: Path, overrides: tuple[str, ...]) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "twinrun",
        "verify",
        str(app.script),
        *overrides,
        "--workdir",
        str(workdir),
    ]
    return subprocess.Popen(
        command,
        cwd=workdir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(workdir.parent)},
    )


def _finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()  # verify stops its own run on SIGTERM, but a test that hangs must end
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


_VERDICTS: dict[str, Verdicts] = {}  # per worker process: a module-scoped fixture would run again
# after other modules' tests that xdist sends in between


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def verdicts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Verdicts:
    """Both verifies of one app, run at once: seeded (the app's defaults) and unseeded."""
    app: App = request.param
    missing = [m for m in app.needs if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{app.name} needs {', '.join(missing)} (pip install -e '.[test]')")
    if app.name not in _VERDICTS:
        base = tmp_path_factory.mktemp(app.name)
        seeded, unseeded = _start(app, base / "seeded", ()), _start(app, base / "unseeded", app.unseeded)
        _VERDICTS[app.name] = Verdicts(app, _finish(seeded), _finish(unseeded), base)
    return _VERDICTS[app.name]


def _line(text: str, section: str) -> str:
    """The summary line of ``section`` in a text report."""
    found = re.search(rf"^{section}\s+\S.*$", text, re.MULTILINE)
    assert found, f"no {section} line in:\n{text}"
    return found.group(0)


def _tensor_verdicts(text: str) -> list[str]:
    """The verdicts of the sections that compared tensors: ``tensors``, and ``weights`` for a file of
    twinrun's own names (``trained_model.pt``)."""
    found = re.findall(r"^(?:tensors|weights)\s+(identical|different)\s", text, re.MULTILINE)
    assert found, f"no tensors were compared:\n{text}"
    return found


# 12 fresh interpreters importing torch (4 importing lightning), each app's four runs made once.


def test_seeded_twins_are_identical(verdicts: Verdicts) -> None:
    done, app = verdicts.seeded, verdicts.app
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"twinrun verify: identical (2 runs of {app.script})")
    # Identical because the tensors were compared, not because nothing was.
    assert set(_tensor_verdicts(done.stdout)) == {"identical"}
    assert "hint:" not in done.stdout and "Traceback" not in done.stderr


def test_unseeded_twins_differ_and_name_the_tensors(verdicts: Verdicts) -> None:
    done, app = verdicts.unseeded, verdicts.app
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith(f"twinrun verify: different (2 runs of {app.script})")
    assert "different" in _tensor_verdicts(done.stdout)
    for tensor in app.tensors:
        assert tensor in done.stdout, f"{tensor} not named in:\n{done.stdout}"
    # The configs of the twins are identical: what differs is the seeding, not the input.
    assert re.match(r"config\s+identical\s", _line(done.stdout, "config"))


def test_unseeded_twins_get_a_hint_about_the_seed(verdicts: Verdicts) -> None:
    hints = [
        line.strip() for line in verdicts.unseeded.stdout.splitlines() if line.strip().startswith("hint:")
    ]
    assert hints, verdicts.unseeded.stdout
    assert any("seed" in h and verdicts.app.hint in h for h in hints), hints


def test_the_runs_are_kept_and_compare_agrees(verdicts: Verdicts) -> None:
    # `twinrun compare` on the runs verify kept gives the same verdicts, every tensor file judged.
    for kind, code, verdict in (("seeded", 0, "identical"), ("unseeded", 1, "different")):
        runs = [str(verdicts.workdir / kind / f"run-{i}") for i in (1, 2)]
        done = subprocess.run(
            [sys.executable, "-m", "twinrun", "compare", *runs, "--json"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == code, done.stdout + done.stderr
        tree = json.loads(done.stdout)
        assert tree["exit_code"] == code
        files = {f["path"]: f for f in tree["sections"]["files"]["files"]}
        for name in verdicts.app.files:
            assert files[name]["kind"] in ("tensors", "weights"), files[name]
            assert files[name]["verdict"] == verdict, files[name]
