"""``twinrun.verify.apps`` / ``twinrun.verify.cli``: app resolution, arguments, error paths, rendering.

No training here: the apps are tiny scripts that write a one-tensor ``weights.safetensors`` with numpy.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given, settings
from hypothesis import strategies as st

from twinrun import cli
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, ConfigSection, Report, WeightsSection
from twinrun.verify import cli as cli_verify
from twinrun.verify.apps import (
    AppCommand,
    CompareOptions,
    VerifyError,
    VerifyResult,
    check_overrides,
    compare_pair,
    hydra_quote,
    left_nothing,
    prepare_workdir,
    resolve_app,
    run_once,
    verify_app,
)

# A stand-in for a Hydra app: reads key=value arguments, writes weights into hydra.run.dir.
# mode=seeded is reproducible; mode=hash depends on PYTHONHASHSEED; mode=entropy on OS entropy.
FAKE_APP = """\
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

args = dict(a.split("=", 1) for a in sys.argv[1:])
run_dir = Path(args["hydra.run.dir"])
run_dir.mkdir(parents=True, exist_ok=True)
mode = args.get("mode", "seeded")
if mode == "seeded":
    w = np.random.default_rng(0).standard_normal(4)
elif mode == "hash":
    w = np.array([hash("twinrun") % 1000], dtype=np.float64)
elif mode == "nothing":
    sys.exit(0)
else:
    w = np.random.default_rng().standard_normal(4)
save_file({"w": w.astype(np.float32)}, str(run_dir / "weights.safetensors"))
if "noise" in args:  # a file that differs in every run, beside reproducible weights
    (run_dir / args["noise"]).write_bytes(np.random.default_rng().bytes(16))
print("wrote", run_dir)
"""


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def fake_app(tmp_path: Path) -> Path:
    path = tmp_path / "fake_app.py"
    path.write_text(FAKE_APP)
    return path


def test_twinruns_own_apps_run_with_this_interpreter() -> None:
    command = resolve_app("vae-mnist")
    assert command.kind == "module" and command.argv[:2] == (sys.executable, "-c")
    assert "'twinrun.trainers.apps.vae_mnist'" in command.argv[2] and "'main'" in command.argv[2]
    assert "twinrun.trainers.apps.mnist_classifier" in resolve_app("mnist-classifier").argv[2]


def test_module_function_apps(tmp_path: Path) -> None:
    command = resolve_app("json.tool:main")
    assert command.kind == "module" and "importlib.import_module('json.tool')" in command.argv[2]
    with pytest.raises(VerifyError, match=r"no module 'no_such_pkg\.sub'"):
        resolve_app("no_such_pkg.sub:main")


def test_a_module_without_the_function_is_one_line_not_its_traceback(tmp_path: Path) -> None:
    with pytest.raises(VerifyError) as info:
        run_once(resolve_app("os:nope"), [], 1, 2, tmp_path)
    assert str(info.value) == "run 1 failed: os:nope: module os has no function nope; check APP"
    assert run_once(resolve_app("os:getpid"), [], 2, 2, tmp_path).returncode == 0  # control: it exists


def test_a_file_that_cannot_be_started_ends_the_progress_line_first(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.write_text("not a program\n")
    notes.chmod(0o755)
    progress = io.StringIO()
    with pytest.raises(VerifyError) as info:
        run_once(resolve_app(str(notes)), [], 1, 2, tmp_path, progress=progress)
    assert progress.getvalue() == "run 1/2 ... FAILED\n"  # the error goes on a line of its own
    assert str(info.value).startswith(f"{notes} cannot be started (Exec format error)")
    assert "\n" not in str(info.value)


def test_console_script_from_entry_points_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # twinrun's own console script is found through this environment's entry points, not PATH
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "'twinrun.cli'" in resolve_app("twinrun").argv[2]
    tool = tmp_path / "my-hydra-app"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    assert resolve_app("my-hydra-app") == AppCommand("my-hydra-app", (str(tool),), "console script")
    tool.chmod(0o644)  # not executable: not a console script
    with pytest.raises(VerifyError, match="my-hydra-app: no such app"):
        resolve_app("my-hydra-app")


def test_script_paths(fake_app: Path, tmp_path: Path) -> None:
    command = resolve_app(str(fake_app))
    assert command == AppCommand(str(fake_app), (sys.executable, str(fake_app.resolve())), "script")
    with pytest.raises(VerifyError, match="does not exist"):
        resolve_app(str(tmp_path / "missing.py"))
    executable = tmp_path / "run.sh"
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    assert resolve_app(str(executable)).argv == (str(executable.resolve()),)


@pytest.mark.parametrize("app", ["", "-m", "--json"])
def test_flags_are_not_apps(app: str) -> None:
    with pytest.raises(VerifyError, match="not an app"):
        resolve_app(app)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.run.dir=/x", "--workdir"),
        ("hydra.sweep.dir=/x", "--workdir"),
        ("-m", "no flags"),
        ("--multirun", "no flags"),
        ("lr", "not a Hydra override"),
    ],
)
def test_overrides_verify_must_own_are_refused(override: str, message: str) -> None:
    with pytest.raises(VerifyError, match=message):
        check_overrides(["seed=1", override])


def test_ordinary_overrides_pass_unchanged() -> None:
    items = ["seed=0", "+extra=1", "~scheduler", "optimizer.lr=1e-3", "data=synthetic"]
    assert check_overrides(items) == items


@settings(max_examples=500)  # a pure string check: the training profiles' few examples missed '\\0'
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40))
def test_hydra_quote_round_trips_through_hydras_parser(value: str) -> None:
    override = OverridesParser.create().parse_override(f"hydra.run.dir={hydra_quote(value)}")
    assert override.value() == value


@settings(max_examples=500)
@given(st.text(st.sampled_from("\\'\" a$.{}=:/,[]()"), min_size=1, max_size=12))
def test_hydra_quote_round_trips_the_characters_hydra_treats_specially(value: str) -> None:
    override = OverridesParser.create().parse_override(f"hydra.run.dir={hydra_quote(value)}")
    assert override.value() == value


@pytest.mark.parametrize(
    "value", ["\\0", "a\\b", "a\\", "a\\\\", "it's", "a\\'b", "\\'", "x y", "C:\\runs\\a b\\"]
)
def test_hydra_quote_known_backslash_cases(value: str) -> None:
    # '\\0' was found by hypothesis: a backslash not before a quote is not an escape in Hydra.
    override = OverridesParser.create().parse_override(f"hydra.run.dir={hydra_quote(value)}")
    assert override.value() == value


def test_hydra_quote_leaves_plain_paths_alone() -> None:
    assert hydra_quote("/tmp/twinrun-verify-1/run-1") == "/tmp/twinrun-verify-1/run-1"
    assert hydra_quote("/tmp/a b") == "'/tmp/a b'"


def test_workdir_refuses_leftovers_and_files(tmp_path: Path) -> None:
    (tmp_path / "used" / "run-2").mkdir(parents=True)
    with pytest.raises(VerifyError, match="already holds run-2"):
        prepare_workdir(tmp_path / "used", runs=2)
    assert prepare_workdir(tmp_path / "used", runs=1) == (tmp_path / "used").resolve()  # run-2 not needed
    (tmp_path / "file").write_text("")
    with pytest.raises(VerifyError, match="is a file"):
        prepare_workdir(tmp_path / "file", runs=2)
    assert prepare_workdir(tmp_path / "new" / "deep", runs=2).is_dir()


def test_default_workdir_is_new_and_timestamped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    first, second = prepare_workdir(None, 2), prepare_workdir(None, 2)
    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith("twinrun-verify-") and not any(first.iterdir())


@pytest.mark.parametrize("runs", [1, 0, -3, True])
def test_too_few_runs_is_refused_before_anything_runs(runs: int, tmp_path: Path) -> None:
    with pytest.raises(VerifyError, match="at least 2"):
        verify_app("no-such-app", runs=runs, workdir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_verify_app_identical_and_outputs_kept(fake_app: Path, tmp_path: Path) -> None:
    progress = io.StringIO()
    result = verify_app(str(fake_app), ["mode=seeded"], runs=3, workdir=tmp_path / "w", progress=progress)
    assert result.identical and result.exit_code == 0
    assert sorted(result.pairs) == [(1, 2), (1, 3), (2, 3)]
    assert result.run_dirs == [(tmp_path / "w" / f"run-{i}").resolve() for i in (1, 2, 3)]
    assert [r.hash_seed for r in result.runs] == [1, 2, 3]
    assert "wrote" in (tmp_path / "w" / "run-2.out").read_text()
    lines = progress.getvalue().splitlines()
    assert lines[1].startswith("run 1/3 ... done in ") and lines[1].endswith("s")
    assert "\r" not in progress.getvalue()


@pytest.mark.parametrize("mode", ["entropy", "hash"])
def test_verify_app_catches_entropy_and_hash_seed_dependence(
    mode: str, fake_app: Path, tmp_path: Path
) -> None:
    # Negative controls for the test above; "hash" differs only because each run gets its own PYTHONHASHSEED.
    result = verify_app(str(fake_app), [f"mode={mode}"], workdir=tmp_path)
    assert not result.identical and result.exit_code == 1
    assert result.report.sections["weights"].status == DIFFERENT


def test_ignore_reaches_the_comparer(fake_app: Path, tmp_path: Path) -> None:
    noisy = ["mode=seeded", "noise=stamp.bin"]
    differs = verify_app(str(fake_app), noisy, workdir=tmp_path / "a")
    assert differs.exit_code == 1 and differs.report.sections["weights"].status == IDENTICAL  # the control
    options = CompareOptions(ignore=("*.bin",))
    ignored = verify_app(str(fake_app), noisy, workdir=tmp_path / "b", options=options)
    assert ignored.exit_code == 0, ignored.report.differing_sections


def test_spinner_only_on_a_terminal(fake_app: Path, tmp_path: Path) -> None:
    tty = FakeTTY()
    verify_app(str(fake_app), ["mode=seeded"], workdir=tmp_path, progress=tty)
    assert "\rrun 1/2 ... done in" in tty.getvalue()


def test_a_failing_run_names_command_and_output(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("print('\\n'.join(f'line {i}' for i in range(40)))\nraise SystemExit(4)\n")
    with pytest.raises(VerifyError) as caught:
        verify_app(str(script), ["a=1"], workdir=tmp_path / "w")
    first, *rest = str(caught.value).splitlines()
    assert first.startswith("run 1 failed with exit code 4; its output is in ")
    assert any(line.strip().startswith(f"command: {sys.executable}") and "a=1" in line for line in rest)
    assert rest[-1].strip() == "line 39" and not any(r.strip() == "line 10" for r in rest)  # the tail only
    assert not (tmp_path / "w" / "run-2.out").exists()  # stops at the first failure


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_options_may_follow_the_overrides(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    seen = {}

    def fake_verify(app, overrides, runs, workdir, progress, timeout, options):
        seen.update(
            app=app, overrides=overrides, runs=runs, workdir=workdir, timeout=timeout, options=options
        )
        raise VerifyError("stop here")

    monkeypatch.setattr(cli_verify, "verify_app", fake_verify)
    argv = ["verify", "--runs", "4", "--ignore", "*.log", "app", "a=1", "--workdir", "W", "b=2"]
    code, _, err = run_cli([*argv, "--ignore", "tb/**", "--trust-pickle", "--timeout", "2.5"], capsys)
    assert code == 2 and err == "twinrun verify: error: stop here\n"
    assert seen == {
        "app": "app",
        "overrides": ["a=1", "b=2"],
        "runs": 4,
        "workdir": "W",
        "timeout": 2.5,
        "options": CompareOptions(trust_pickle=True, ignore=("*.log", "tb/**")),
    }
    run_cli(["verify", "app", "a=1", "--runs", "3"], capsys)
    assert seen["runs"] == 3 and seen["overrides"] == ["a=1"]
    assert seen["timeout"] is None and seen["options"] == CompareOptions()  # the controls: defaults


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "x.py", "--json", "--markdown"], "exclude each other"),
        (["verify", "x.py", "--runs", "1"], "at least 2 runs"),
        (["verify", "no-such-app-xyz"], "no such app"),
        (["verify", "vae-mnist", "hydra.run.dir=/tmp/x"], "--workdir"),
        (["verify", "x.py", "--timeout", "0"], "--timeout 0: give a number of seconds > 0"),
        (["verify", "x.py", "--timeout", "nan"], "give a number of seconds > 0"),
        (["verify", "x.py", "--timeout", "x"], "invalid float value: 'x'; see twinrun verify --help"),
        (["verify", "--timeout", "x", "x.py"], "invalid float value: 'x'; see twinrun verify --help"),
        (["verify", "x.py", "--ignore"], "expected one argument; see twinrun verify --help"),
    ],
)
def test_cli_unusable_input_is_one_line_exit_2(argv: list[str], message: str, capsys) -> None:
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_cli_app_that_writes_nothing_is_unusable(fake_app: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["verify", str(fake_app), "mode=nothing", "--workdir", str(tmp_path)], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("twinrun verify: error: ") and str(tmp_path / "run-1") in last
    assert "write" in last and last.count("hydra.run.dir") == 1  # said once, by whichever knows


def test_left_nothing_counts_only_what_the_app_wrote(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert left_nothing(run)  # no directory at all
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("a: 1\n")
    (run / "train.log").write_text("")  # Hydra's job log
    assert left_nothing(run)
    (run / "out").mkdir()
    (run / "out" / "model.pt").write_bytes(b"x")
    assert not left_nothing(run)


def test_compare_pair_adds_the_run_dir_hint_only_for_a_run_that_left_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import twinrun.compare.runs

    seen = {}

    def unusable(a, b, **options):
        seen.update(options)
        raise twinrun.compare.runs.UnusableRunError(f"{a}: broken")

    monkeypatch.setattr(twinrun.compare.runs, "compare_runs", unusable)
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    (full / "model.pt").write_bytes(b"x")
    options = CompareOptions(trust_pickle=True, ignore=("*.log",))
    with pytest.raises(twinrun.compare.runs.UnusableRunError, match=r"broken \(did app write into hydra"):
        compare_pair(empty, full, "app", options)
    assert seen == {"trust_pickle": True, "ignore": ("*.log",)}
    with pytest.raises(twinrun.compare.runs.UnusableRunError) as caught:  # the control: it left files
        compare_pair(full, full, "app")
    assert "hydra.run.dir" not in str(caught.value)


def _report(weights_status: str) -> Report:
    sections = {
        "weights": WeightsSection(status=weights_status, summary=f"weights {weights_status}"),
        "config": ConfigSection(status=IDENTICAL, summary="same"),
    }
    return Report("a", "b", sections)


def _result(statuses: dict[tuple[int, int], str]) -> VerifyResult:
    result = VerifyResult(AppCommand("app", ("app",), "console script"), Path("/w"), runs=[])
    result.pairs = {pair: _report(status) for pair, status in statuses.items()}
    return result


def test_render_summarizes_pairs_and_details_the_first_that_differs() -> None:
    result = _result({(1, 2): IDENTICAL, (1, 3): DIFFERENT, (2, 3): DIFFERENT})
    text = cli_verify.render(result)
    assert text.startswith("twinrun verify: different (0 runs of app)")
    assert "run-1 / run-2  identical  -" in text and "run-1 / run-3  different  weights" in text
    assert result.report is result.pairs[(1, 3)]
    markdown = cli_verify.render(result, "markdown")
    assert "| run-2 / run-3 | different | weights |" in markdown
    tree = json.loads(cli_verify.render(result, "json"))
    assert tree["verdict"] == "different" and tree["exit_code"] == 1
    assert [p["verdict"] for p in tree["verify"]["pairs"]] == ["identical", "different", "different"]


def test_render_two_identical_runs_has_no_pair_table() -> None:
    result = _result({(1, 2): IDENTICAL})
    text = cli_verify.render(result)
    assert text.startswith("twinrun verify: identical") and "run-1 / run-2" not in text
    assert json.loads(cli_verify.render(result, "json"))["exit_code"] == 0


def test_cli_verify_is_registered() -> None:
    help_text = cli.build_parser().format_help()
    assert "verify" in help_text
    assert os.environ.get("TWINRUN_DEBUG") != "1"  # the one-line error paths above assume no debug mode


@pytest.mark.parametrize("timeout", [True, 0, -1.0, float("nan"), float("inf"), "3"])
def test_a_timeout_that_is_not_a_positive_number_is_refused(timeout: object, tmp_path: Path) -> None:
    with pytest.raises(VerifyError, match=r"^--timeout .*: give a number of seconds > 0$"):
        verify_app("no-such-app", timeout=timeout, workdir=tmp_path)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())  # refused before anything ran


@pytest.mark.parametrize("timeout", [None, 1, 2.5])
def test_a_positive_timeout_is_accepted(timeout: float | None) -> None:
    from twinrun.verify.apps import check_timeout

    assert check_timeout(timeout) == timeout


def test_an_app_that_cannot_be_started_is_one_line(tmp_path: Path) -> None:
    command = AppCommand("ghost", (str(tmp_path / "no-such-binary"),), "console script")
    with pytest.raises(VerifyError) as caught:
        verify_app(command, workdir=tmp_path / "w")
    assert str(caught.value) == (
        f"ghost cannot be started (No such file or directory): {tmp_path}/no-such-binary; "
        "give a console script, module:function or script.py"
    )
