"""``twinrun compare`` as real processes: exit codes 0/1/2, one-line errors, the three formats."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import fake_runs as fr
from twinrun import cli
from twinrun.record import runs

REPO = Path(__file__).resolve().parents[2]


def twinrun_script() -> list[str]:
    """The ``twinrun`` console script beside this interpreter, else on PATH, else ``python -m twinrun``."""
    beside = Path(sys.executable).parent / "twinrun"
    found = str(beside) if beside.exists() else shutil.which("twinrun")
    return [found] if found else [sys.executable, "-m", "twinrun"]


def twinrun(*args: str | Path, script: bool = False, env: dict[str, str] | None = None):
    command = twinrun_script() if script else [sys.executable, "-m", "twinrun"]
    environment = {k: v for k, v in os.environ.items() if k not in ("TWINRUN_DEBUG", "NO_COLOR")}
    # The pickled TinyNet of the legacy tests is importable as tests.helpers.fake_runs from the checkout.
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    environment.update(env or {})
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, env=environment, timeout=120
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``cli.main`` in this process (fast), shaped like a finished subprocess."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["twinrun", *map(str, args)], code, out, err)


def assert_one_line_error(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("twinrun compare: error: ") and "; " in lines[0]
    assert fragment in lines[0]


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Path]:
    return fr.make_twins(tmp_path)


@pytest.mark.parametrize("script", [False, True], ids=["python-m", "console-script"])
def test_identical_runs_exit_0(twins: tuple[Path, Path], script: bool) -> None:
    done = twinrun("compare", *twins, script=script)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "identical (exit 0)" in done.stdout.splitlines()[0]
    assert done.stdout.splitlines()[2].split() == ["section", "verdict", "detail"]
    assert "\x1b[" not in done.stdout  # not a terminal: no colors


def test_safetensors_runs_compare_without_importing_torch(twins: tuple[Path, Path]) -> None:
    """Start-up stays fast: torch is needed only for legacy .pt files and bfloat16/float8 statistics."""
    code = "import sys\nfrom twinrun.cli import main\nmain(sys.argv[1:])\nprint('torch' in sys.modules)"
    fr.flip_bit(twins[1], "encoder.weight")
    done = subprocess.run(
        [sys.executable, "-c", code, "compare", *map(str, twins)], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "False", done.stderr
    assert "encoder.weight (1 of 12 elements" in done.stdout  # control: it did compare the weights


def test_one_flipped_bit_exits_1_and_names_the_tensor(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.flip_bit(b, "decoder.weight", index=7)
    done = twinrun("compare", a, b)
    assert done.returncode == 1, done.stderr
    assert "decoder.weight (1 of 12 elements" in done.stdout and "max 1 ULP" in done.stdout


def test_json_report(twins: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = twins
    tree = json.loads(in_process(capsys, "compare", a, b, "--json").stdout)
    assert (tree["verdict"], tree["exit_code"], tree["divergence"]) == ("identical", 0, None)
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows[3]["rng"].update(numpy="0"))
    done = twinrun("compare", a, b, "--json")
    tree = json.loads(done.stdout)
    assert done.returncode == 1 and tree["verdict"] == "different"
    assert {"files", "weights", "config", "logs", "metrics", "environment", "trace"} <= set(tree["sections"])
    assert [e["path"] for e in tree["sections"]["files"]["files"] if e["verdict"] == "different"] == [
        runs.TRACE
    ]
    div = tree["divergence"]
    assert (div["step"], div["epoch"], div["cause"], div["rng_streams"]) == (4, 2, "rng stream", ["numpy"])
    assert {"parameter", "detail"} <= set(div)


def test_markdown_report(twins: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    done = in_process(capsys, "compare", *twins, "--markdown")
    assert done.returncode == 0
    assert done.stdout.startswith("### ✅ twinrun compare: identical")
    assert "| section | verdict | detail |" in done.stdout


def test_color_flag(twins: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert "\x1b[32midentical" in in_process(capsys, "compare", *twins, "--color", "always").stdout
    assert "\x1b[" not in in_process(capsys, "compare", *twins, "--color", "never").stdout
    assert "\x1b[" not in in_process(capsys, "compare", *twins).stdout  # auto: captured, not a terminal


def test_tolerance_never_makes_different_identical(
    twins: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = twins
    fr.flip_bit(b, "encoder.weight")
    done = in_process(capsys, "compare", a, b, "--atol", "1e-5", "--rtol", "0")
    assert done.returncode == 1 and "all within atol=1e-05 rtol=0" in done.stdout


def test_different_architectures_exit_1_with_a_clear_line(
    twins: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = twins
    runs.write_weights(b, {**fr.tiny_state_dict(), "encoder.weight": torch.zeros(4, 7)})
    done = in_process(capsys, "compare", a, b)
    assert done.returncode == 1
    assert "different architectures: shape of encoder.weight [4, 3] vs [4, 7]" in done.stdout


def _damage_weights(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _only_hydra(run: Path) -> None:
    for child in run.iterdir():
        if child.name != ".hydra":
            shutil.rmtree(child) if child.is_dir() else child.unlink()


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda a, b: (b.parent / "missing", "does not exist"), "does not exist"),
        (lambda a, b: (b / runs.ENV, None), "is not a directory"),
        (lambda a, b: (a, None), "RUN_A and RUN_B are the same directory; compare two runs"),
        (lambda a, b: (b, os.mkfifo(b / "queue")), "is a FIFO"),
        (lambda a, b: (b, (b / runs.TRACE).unlink() or (b / runs.TRACE).symlink_to("gone")), "dangling"),
        (lambda a, b: (b, (b / runs.METRICS).unlink() or (b / runs.METRICS).mkdir()), "is a directory"),
        (lambda a, b: (b, _only_hydra(b)), "nothing but .hydra/"),
        (lambda a, b: (b, (b / runs.WEIGHTS).write_bytes(b"")), "is empty"),
        (
            lambda a, b: (
                b,
                (b / runs.WEIGHTS).write_bytes(_damage_weights((b / runs.WEIGHTS).read_bytes())),
            ),
            "not a valid safetensors",
        ),
        (lambda a, b: (b, (b / runs.WEIGHTS).write_text("plain text\n" * 20)), "not a valid safetensors"),
        (lambda a, b: (b, torch.save(fr.tiny_state_dict(), b / runs.WEIGHTS)), "not a valid safetensors"),
        (
            lambda a, b: (b, (b / runs.RESOLVED_CONFIG).write_text("seed: [0\n")),
            "resolved_config.yaml line 2",
        ),
        (lambda a, b: (b, (b / ".hydra/overrides.yaml").write_text("- a\n -b: [\n")), "overrides.yaml line"),
        (lambda a, b: (b, (b / runs.METRICS).write_text('{"epoch": 1}\n{oops}\n')), "metrics.jsonl line 2"),
        (lambda a, b: (b, (b / runs.TRACE).write_text('{"step": 1}\n\n[]\n')), "trace.jsonl line 3"),
    ],
    ids=[
        "missing-dir",
        "not-a-dir",
        "same-dir",
        "fifo",
        "dangling-symlink",
        "directory-for-file",
        "only-hydra",
        "empty-weights",
        "truncated",
        "text-file",
        "torch-zip",
        "bad-yaml",
        "bad-overrides",
        "bad-metrics",
        "bad-trace",
    ],
)
def test_unusable_input_is_one_line_and_exit_2(
    twins: tuple[Path, Path], damage, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = twins
    target, _ = damage(a, b)
    assert_one_line_error(in_process(capsys, "compare", a, target), fragment)
    assert_one_line_error(in_process(capsys, "compare", a, target, "--json"), fragment)  # stdout stays empty


@pytest.mark.parametrize("case", ["missing-dir", "truncated", "bad-metrics"])
def test_unusable_input_in_a_real_process(twins: tuple[Path, Path], case: str) -> None:
    a, b = twins
    if case == "missing-dir":
        target, fragment = b.parent / "missing", "does not exist"
    elif case == "truncated":
        (b / runs.WEIGHTS).write_bytes(_damage_weights((b / runs.WEIGHTS).read_bytes()))
        target, fragment = b, "not a valid safetensors"
    else:
        (b / runs.METRICS).write_text('{"epoch": 1}\n{oops}\n')
        target, fragment = b, "metrics.jsonl line 2"
    done = twinrun("compare", a, target, "--json")
    assert "Traceback" not in done.stderr
    assert_one_line_error(done, fragment)


def test_legacy_pickled_module_needs_no_trust(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = fr.make_legacy_run(tmp_path / "a", module=True)
    b = fr.make_legacy_run(tmp_path / "b", module=True)
    assert in_process(capsys, "compare", a, b).returncode == 0
    torch.manual_seed(3)  # negative control: another initialisation differs
    torch.save(fr.TinyNet(), b / "trained_model.pt")
    done = twinrun("compare", a, b)
    assert done.returncode == 1, done.stderr


def test_legacy_state_dicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = fr.make_legacy_run(tmp_path / "a"), fr.make_legacy_run(tmp_path / "b")
    assert in_process(capsys, "compare", a, b).returncode == 0
    changed = fr.tiny_state_dict()
    changed["mask"][0] = False
    fr.make_legacy_run(b, state_dict=changed)
    done = in_process(capsys, "compare", a, b)
    assert done.returncode == 1 and "mask (1 of 3 elements" in done.stdout


def test_unexpected_error_is_one_line_in_a_real_process(twins: tuple[Path, Path]) -> None:
    code = (
        "import sys, twinrun.compare.runs as c\n"
        "def boom(*a, **k): raise RuntimeError('boom\\nsecond line')\n"
        "c.compare_runs = boom\n"
        "from twinrun.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    command = [sys.executable, "-c", code, "compare", *map(str, twins)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "twinrun compare: error: unexpected RuntimeError: boom second line; "
        "rerun with TWINRUN_DEBUG=1 for the traceback and report it"
    ]
    debug = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, "TWINRUN_DEBUG": "1"}
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "RuntimeError: boom" in debug.stderr


# --- main() in-process: usage -----------------------------------------------------------------------------


def test_main_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert cli.main(["compare", "only-one"]) == 2
    assert "twinrun compare: error: the following arguments are required: RUN_B" in capsys.readouterr().err
    assert cli.main(["compare", "a", "b", "--json", "--markdown"]) == 2
    assert cli.main(["compare", "--help"]) == 0
    assert "--trust-pickle" in capsys.readouterr().out


def test_main_catches_unexpected_errors(
    twins: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import twinrun.compare.runs

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyError("nope")

    monkeypatch.setattr(twinrun.compare.runs, "compare_runs", boom)
    monkeypatch.delenv("TWINRUN_DEBUG", raising=False)
    assert cli.main(["compare", *map(str, twins)]) == 2
    assert capsys.readouterr().err.startswith("twinrun compare: error: unexpected KeyError: 'nope'; rerun")
    monkeypatch.setenv("TWINRUN_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["compare", *map(str, twins)])


def test_every_subcommand_is_registered() -> None:
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(choices) == {"compare", "verify", "explain", "golden", "doctor", "audit"}


def test_ignore_flag_is_repeatable(twins: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = twins
    (b / "debug.txt").write_text("x")
    (b / "profile").mkdir()
    (b / "profile" / "trace.html").write_text("<html>")
    done = in_process(capsys, "compare", a, b)
    assert done.returncode == 1 and "debug.txt  [bytes]  only in RUN_B" in done.stdout
    done = in_process(capsys, "compare", a, b, "--ignore", "*.txt", "--ignore", "profile/")
    assert done.returncode == 0, done.stdout
    assert (
        "debug.txt  [ignored]  ignored: matches *.txt" in done.stdout and "profile/  [ignored]" in done.stdout
    )


def test_a_file_name_that_is_not_utf8_is_shown_escaped(tmp_path: Path) -> None:
    # Was "unexpected UnicodeEncodeError" from --html, and from the text report on a strict stdout.
    run_a, run_b = fr.make_twins(tmp_path)
    for run in (run_a, run_b):
        (run / os.fsdecode(b"bad\xffname.txt")).write_bytes(b"x")
    page = tmp_path / "r.html"
    done = twinrun("compare", run_a, run_b, "--html", page, env={"PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stderr
    assert "bad\\udcffname.txt" in done.stdout
    assert "bad\\xffname.txt" in page.read_text(encoding="utf-8")  # the page shows the byte itself
