"""``python -m twinrun verify``: real processes, real runs (tiny configs, CPU)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TINY_VAE = [
    "data=synthetic",
    "data.train_samples=256",
    "data.test_samples=64",
    "training.epochs=1",
    "device=cpu",
]

# A Hydra app of a user's own; with seeded=false it draws its tensor from python's `random`, which a
# fresh interpreter seeds from OS entropy: the negative control for "identical".
THROWAWAY_APP = """\
import random
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig

from twinrun.record import runs


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    torch.manual_seed(cfg.seed if cfg.seeded else random.getrandbits(63))
    weights = {"layer.weight": torch.randn(cfg.size, cfg.size), "layer.bias": torch.zeros(cfg.size)}
    runs.write_weights(Path(HydraConfig.get().runtime.output_dir), weights)


if __name__ == "__main__":
    main()
"""


def verify(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m twinrun verify ARGS`` in ``cwd`` (also used by test_sweep_cli.py).

    TMPDIR: the default work directory goes under the system temp dir, here the test's own. The runs
    share the suite's data root through TWINRUN_DATA_ROOT, which tests/conftest.py puts in os.environ.
    """
    return subprocess.run(
        [sys.executable, "-m", "twinrun", "verify", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TMPDIR": str(cwd)},
    )


@pytest.fixture
def throwaway_app(tmp_path: Path) -> Path:
    app_dir = tmp_path / "app"
    (app_dir / "conf").mkdir(parents=True)
    (app_dir / "conf" / "config.yaml").write_text("seed: 3\nseeded: false\nsize: 4\n")
    (app_dir / "train.py").write_text(THROWAWAY_APP)
    return app_dir / "train.py"


@pytest.mark.slow  # two or more fresh interpreters importing torch
def test_vae_mnist_twins_are_identical(tmp_path: Path, twinrun_data_root: Path) -> None:
    workdir = tmp_path / "work"
    done = verify(
        "vae-mnist", *TINY_VAE, f"data.root={twinrun_data_root}", "--workdir", str(workdir), cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "twinrun verify: identical (2 runs of vae-mnist)" in done.stdout
    assert "weights      identical" in done.stdout
    assert "run 1/2 ..." in done.stderr and "run 2/2 ... done in" in done.stderr
    assert "\r" not in done.stderr  # no spinner when stderr is not a terminal
    for i in (1, 2):
        assert (workdir / f"run-{i}" / "weights.safetensors").is_file()
        assert "weights digest" in (workdir / f"run-{i}.out").read_text()
    assert f"run directories kept in {workdir}" in done.stderr


@pytest.mark.slow  # two or more fresh interpreters importing torch
def test_unseeded_app_differs_and_names_the_weights(throwaway_app: Path, tmp_path: Path) -> None:
    done = verify(str(throwaway_app), "size=3", "--runs", "3", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert out.startswith("twinrun verify: different (3 runs of")
    for pair in ("run-1 / run-2", "run-1 / run-3", "run-2 / run-3"):
        assert re.search(rf"{pair}  different  (files, )?weights\n", out), out
    assert "layer.weight" in out
    workdir = Path(done.stderr.split("run directories kept in ")[1].strip())
    assert workdir.name.startswith("twinrun-verify-") and workdir.parent == tmp_path
    assert (workdir / "run-3" / "weights.safetensors").is_file() and (workdir / "run-3.out").is_file()


@pytest.mark.slow  # two or more fresh interpreters importing torch
def test_json_report_parses_and_matches_exit_code(throwaway_app: Path, tmp_path: Path) -> None:
    # The same app seeded is the positive control for the unseeded run above.
    seeded = verify(
        str(throwaway_app), "seeded=true", "--json", "--workdir", str(tmp_path / "a"), cwd=tmp_path
    )
    unseeded = verify(str(throwaway_app), "--workdir", str(tmp_path / "b"), "--json", cwd=tmp_path)
    good, bad = json.loads(seeded.stdout), json.loads(unseeded.stdout)
    assert (seeded.returncode, good["verdict"], good["exit_code"]) == (0, "identical", 0)
    assert (unseeded.returncode, bad["verdict"], bad["exit_code"]) == (1, "different", 1)
    assert bad["sections"]["weights"]["status"] == "different"
    assert good["sections"]["weights"]["status"] == "identical"
    runs = good["verify"]["runs"]
    assert [r["pythonhashseed"] for r in runs] == [1, 2]
    assert runs[0]["run_dir"] == str((tmp_path / "a" / "run-1").resolve())
    assert good["verify"]["pairs"] == [{"a": 1, "b": 2, "verdict": "identical", "exit_code": 0}]


def test_missing_app_exits_2_with_one_line(tmp_path: Path) -> None:
    done = verify("no-such-app-xyz", "a=1", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-app-xyz: no such app" in lines[0]
    assert "Traceback" not in done.stderr


def test_failed_run_exits_2_with_command_and_last_lines(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text(
        "import sys\nprint('loading...')\nprint('boom: bad config', file=sys.stderr)\nsys.exit(3)\n"
    )
    done = verify(str(script), "x=1", cwd=tmp_path)
    assert done.returncode == 2
    assert "run 1 failed with exit code 3" in done.stderr
    assert "boom: bad config" in done.stderr and f"command: {sys.executable}" in done.stderr
    assert "x=1 hydra.run.dir=" in done.stderr
    assert "Traceback" not in done.stderr


# An app that starts a helper ignoring SIGTERM (as a DataLoader worker or a launcher's job may), writes
# both pids, prints a line and hangs: verify must stop both when it is stopped or the run times out.
HANGING_APP = """\
import os, subprocess, sys, time
from pathlib import Path

args = dict(a.split("=", 1) for a in sys.argv[1:])
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
helper = subprocess.Popen([sys.executable, "-c", code])
print("step 1 of 1000: loss 0.5", flush=True)
Path(args["pids"]).write_text(f"{os.getpid()} {helper.pid}")
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """A live process (a zombie nobody reaps counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pids: list[int], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(map(_alive, pids))


@pytest.fixture
def hanging_app(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The app's path and the file its pids go to; whatever is left running is killed afterwards."""
    app, pids = tmp_path / "hang.py", tmp_path / "pids"
    app.write_text(HANGING_APP)
    yield app, pids
    for pid in map(int, pids.read_text().split() if pids.is_file() else []):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait_for_pids(pids: Path, proc: subprocess.Popen[str]) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if pids.is_file() and len(pids.read_text().split()) == 2:
            return [int(p) for p in pids.read_text().split()]
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the app never started: {proc.communicate()}")


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc")
@pytest.mark.parametrize(("signum", "name"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")])
def test_a_stopped_verify_leaves_no_run_behind(
    signum: int, name: str, hanging_app: tuple[Path, Path], tmp_path: Path
) -> None:
    app, pids = hanging_app
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twinrun",
            "verify",
            str(app),
            f"pids={pids}",
            "--workdir",
            str(tmp_path / "w"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = _wait_for_pids(pids, proc)
    assert all(map(_alive, running))  # the control: both run before verify is stopped
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert err.splitlines()[-2:] == ["run 1/2 ... stopped", f"twinrun verify: stopped by {name}"]
    assert out == ""
    assert _gone(running), "a run outlived verify"
    assert not (tmp_path / "w" / "run-2.out").exists()


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc")
def test_a_run_past_its_timeout_is_stopped_and_named(hanging_app: tuple[Path, Path], tmp_path: Path) -> None:
    app, pids = hanging_app
    started = time.monotonic()
    done = verify(str(app), f"pids={pids}", "--timeout", "3", "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert time.monotonic() - started < 30  # not the app's 120 s
    output = tmp_path / "w" / "run-1.out"
    progress, first, *rest = done.stderr.splitlines()[1:]  # after the headline
    assert progress.startswith("run 1/2 ... FAILED (timed out after 3s) in 3.")
    assert first == (
        f"twinrun verify: error: run 1 did not finish within --timeout 3s and was stopped; "
        f"its output is in {output}"
    )
    assert "    step 1 of 1000: loss 0.5" in rest  # the app's output tail
    assert "Traceback" not in done.stderr
    assert _gone([int(p) for p in pids.read_text().split()])
    assert not (tmp_path / "w" / "run-2.out").exists()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["bogus"], "twinrun: error: argument COMMAND: invalid choice: 'bogus'"),
        (["--bogus"], "twinrun: error: unrecognized arguments: --bogus; see twinrun --help"),
        (["compare", "a"], "twinrun compare: error: the following arguments are required: RUN_B;"),
        (["compare", "a", "b", "--bogus"], "twinrun compare: error: unrecognized arguments: --bogus;"),
        (["compare", "a", "b", "--atol", "x"], "twinrun compare: error: argument --atol: invalid float"),
        (["verify", "--runs", "x", "app"], "twinrun verify: error: argument --runs: invalid int value"),
        (["verify", "app", "--runs", "x"], "twinrun verify: error: argument --runs: invalid int value"),
        (["verify", "app", "--timeout"], "twinrun verify: error: argument --timeout: expected one argument;"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(argv: list[str], line: str, capsys) -> None:
    from twinrun import cli

    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    command = line.split(": error:")[0]
    assert out == "" and err.startswith(line) and err.count("\n") == 1, err
    assert err.endswith(f"; see {command} --help\n") and "usage:" not in err


def test_help_is_still_the_full_page(capsys) -> None:
    # The control for the one-line errors above: --help prints the whole page and exits 0.
    from twinrun import cli

    assert cli.main(["verify", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: twinrun verify") and "--timeout SECONDS" in out and "--ignore GLOB" in out
