"""Reading run directories: artifacts, foreign Hydra configs, log normalization, weights sources."""

from __future__ import annotations

import locale
import operator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.helpers.fake_runs import TinyNet, make_legacy_run, make_run, tiny_state_dict
from twinrun.compare.judge.tensor_files import open_weights
from twinrun.compare.read.object_tree import Container
from twinrun.compare.read.run_reader import (
    CanonicalConfig,
    PathMask,
    UnusableRunError,
    absolute_spellings,
    comparable_overrides,
    find_logs,
    normalize_log_line,
    open_run,
    parse_json,
    path_mask,
    read_config,
    read_json,
    read_jsonl,
    read_log,
    read_overrides,
    unreadable_reason,
)
from twinrun.compare.read.weights_reader import LEGACY_WEIGHTS
from twinrun.record import runs


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run")


def test_open_run_refuses_missing_and_files(tmp_path: Path) -> None:
    with pytest.raises(UnusableRunError, match="does not exist; give the path of a run directory"):
        open_run(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnusableRunError, match="is not a directory"):
        open_run(tmp_path / "file")
    assert open_run(tmp_path).path == tmp_path.resolve()


def test_open_run_keeps_the_users_spelling_and_expands_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "r").mkdir()
    (tmp_path / "f").write_text("x")
    run = open_run("~/r")
    assert (run.path, run.shown) == ((tmp_path / "r").resolve(), "~/r")
    assert run.show("env.json") == "~/r/env.json" and run.file("env.json") == run.path / "env.json"
    with pytest.raises(UnusableRunError) as info:
        open_run("~/nope")
    assert str(info.value) == "~/nope does not exist; give the path of a run directory"
    with pytest.raises(UnusableRunError) as info:
        open_run("~/f")
    assert str(info.value) == "~/f is not a directory; give the run directory, not a file in it"


def test_unusable_run_error_is_one_line() -> None:
    assert str(UnusableRunError("a\nb\n  c")) == "a b c"


def test_malformed_yaml_names_file_and_line(run: Path) -> None:
    (run / runs.RESOLVED_CONFIG).write_text("seed: 0\noptimizer: {lr: 0.1\n")
    with pytest.raises(UnusableRunError, match=r"resolved_config.yaml line \d+: malformed YAML") as info:
        read_config(open_run(run))
    assert "\n" not in str(info.value)


def test_config_that_is_not_a_mapping(run: Path) -> None:
    (run / runs.RESOLVED_CONFIG).write_text("- a\n- b\n")
    with pytest.raises(UnusableRunError, match="expected a mapping"):
        read_config(open_run(run))


def test_malformed_jsonl_names_file_and_line(run: Path) -> None:
    text = (run / runs.METRICS).read_text().splitlines()
    (run / runs.METRICS).write_text(text[0] + "\n\n" + text[1][:-3] + "\n")
    with pytest.raises(UnusableRunError, match=r"metrics.jsonl line 3: malformed JSON"):
        read_jsonl(open_run(run), runs.METRICS)
    (run / runs.METRICS).write_text(text[0] + "\n[1, 2]\n")
    with pytest.raises(UnusableRunError, match=r"line 2: expected a JSON object, found list"):
        read_jsonl(open_run(run), runs.METRICS)


def test_jsonl_skips_blank_lines(run: Path) -> None:
    rows = read_jsonl(open_run(run), runs.METRICS)
    (run / runs.METRICS).write_text("\n" + (run / runs.METRICS).read_text() + "\n\n")
    assert read_jsonl(open_run(run), runs.METRICS) == rows


def test_malformed_json_and_non_utf8(run: Path) -> None:
    (run / runs.ENV).write_text('{\n  "torch": "2.1",\n  oops\n}')
    with pytest.raises(UnusableRunError, match=r"env.json line 3: malformed JSON"):
        read_json(open_run(run), runs.ENV)
    (run / runs.ENV).write_bytes(b'{"a": "\xff"}')
    with pytest.raises(UnusableRunError, match="not UTF-8"):
        read_json(open_run(run), runs.ENV)


def test_read_errors_are_one_exact_line(run: Path) -> None:
    r = open_run(run)
    (run / runs.ENV).write_bytes(b'{"a": "\xff"}')
    with pytest.raises(UnusableRunError) as info:
        read_json(r, runs.ENV)
    assert str(info.value) == f"{run}/env.json is not UTF-8 text (byte 7); regenerate the file"
    (run / "d.json").mkdir()
    with pytest.raises(UnusableRunError) as info:
        read_json(r, "d.json")
    expected = "(is a directory: a directory where a file is expected; regenerate the run)"
    assert str(info.value) == f"cannot read {run}/d.json {expected}"
    with pytest.raises(UnusableRunError) as info:
        read_jsonl(r, "missing.jsonl")
    assert (
        str(info.value) == f"cannot read {run}/missing.jsonl (no such file or directory; regenerate the run)"
    )


def test_run_files_are_utf8_whatever_the_locale(run: Path) -> None:
    (run / runs.ENV).write_text('{"host": "café"}', encoding="utf-8")
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale: its default decoding would fail
    try:
        assert read_json(open_run(run), runs.ENV) == {"host": "café"}
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_unreadable_reason() -> None:
    assert (
        unreadable_reason(PermissionError(13, "Permission denied"))
        == "permission denied; check its permissions"
    )
    assert unreadable_reason(FileNotFoundError(2, "No Such File")) == "no such file; regenerate the run"
    assert unreadable_reason(OSError()) == "oserror; regenerate the run"  # no strerror: the type names it


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "seed: 0\noptimizer: {lr: 0.1\n",
            " line 3: malformed YAML (expected ',' or '}', but got '<stream end>'); "
            "fix or regenerate the file",
        ),
        (
            "a: b: c\n",
            " line 1: malformed YAML (mapping values are not allowed here); fix or regenerate the file",
        ),
        # A reader error (a control character) has neither a mark nor a problem: the error type stands in.
        ("a: \x01\n", ": malformed YAML (ReaderError); fix or regenerate the file"),
        ("a: " + "[" * 201 + "]" * 201, ": nested deeper than 200 levels; this is not a config a run writes"),
    ],
    ids=["unclosed", "scanner", "control-character", "too-deep"],
)
def test_bad_yaml_is_one_exact_line(run: Path, text: str, message: str) -> None:
    (run / runs.RESOLVED_CONFIG).write_text(text)
    with pytest.raises(UnusableRunError) as info:
        read_config(open_run(run))
    assert str(info.value) == f"{run}/resolved_config.yaml{message}"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{\n "a": 1,\n "a": 2}', None, "f line 3: duplicate key 'a' (which value counts is undefined); "),
        ('{"a": 1, "a": 2}', 7, "f line 7: duplicate key 'a' (which value counts is undefined); "),
        # The second spelling is an escape: no line can be pointed at, the file is named alone.
        ('{"a": 1, "\\u0061": 2}', None, "f: duplicate key 'a' (which value counts is undefined); "),
        (
            "[" * 100_000,
            None,
            "f: nested deeper than Python's parser allows; this is not a file a run writes",
        ),
        ("[" * 100_000, 4, "f line 4: nested deeper than Python's parser allows; this is not a file a run "),
        (
            '{"a":\n\n 1,}',
            None,
            "f line 3: malformed JSON (Expecting property name enclosed in double quotes)",
        ),
        ('{"a": 1,}', 5, "f line 5: malformed JSON (Expecting property name enclosed in double quotes)"),
    ],
    ids=["dup-file", "dup-jsonl", "dup-escaped", "deep-file", "deep-jsonl", "syntax-file", "syntax-jsonl"],
)
def test_bad_json_is_one_exact_line(text: str, line: int | None, message: str) -> None:
    with pytest.raises(UnusableRunError) as info:
        parse_json("f", text, line)
    assert str(info.value).startswith(message)
    assert str(info.value).endswith(("; regenerate the file", "; fix or regenerate the file", "a run writes"))


def test_parse_json_keeps_what_it_reads() -> None:
    assert parse_json("f", '{"b": [1, 2.5], "a": null}', 3) == {"b": [1, 2.5], "a": None}


def test_jsonl_rows_and_the_line_of_a_non_object(run: Path) -> None:
    (run / runs.METRICS).write_text('{"step": 1}\n\n  \n{"step": 2}\n"text"\n')
    with pytest.raises(UnusableRunError) as info:
        read_jsonl(open_run(run), runs.METRICS)
    assert (
        str(info.value)
        == f"{run}/metrics.jsonl line 5: expected a JSON object, found str; regenerate the file"
    )
    (run / runs.METRICS).write_text('{"step": 1}\n\n  \n{"step": 2}\n')
    assert read_jsonl(open_run(run), runs.METRICS) == [{"step": 1}, {"step": 2}]


def test_resolved_config_is_preferred(run: Path) -> None:
    cfg = read_config(open_run(run))
    assert cfg is not None and cfg.source == runs.RESOLVED_CONFIG
    assert cfg.tree["optimizer"]["lr"] == 0.001


def test_foreign_hydra_config_is_compared_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "foreign"
    (run / ".hydra").mkdir(parents=True)
    raw = {
        "epochs": 3,
        "training": {"epochs": "${epochs}", "out": "${hydra:runtime.output_dir}", "ckpt_dir": "/x"},
        "home": "${oc.env:HOME}",
        "needed": "???",
        "layers": [1, "${epochs}"],
    }
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("HOME", "/home/whoever-compares")
    cfg = read_config(open_run(run))
    assert cfg is not None and cfg.source == ".hydra/config.yaml" and cfg.unresolvable == []
    # Interpolations stay text: the environment of whoever compares does not enter (volatile keys dropped).
    assert cfg.tree == {
        "epochs": 3,
        "home": "${oc.env:HOME}",
        "layers": [1, "${epochs}"],
        "needed": "???",
        "training": {"epochs": "${epochs}", "out": "${hydra:runtime.output_dir}"},
    }


def test_hydra_config_is_the_fallback_and_an_empty_config_is_empty(run: Path) -> None:
    (run / runs.RESOLVED_CONFIG).unlink()
    cfg = read_config(open_run(run))
    assert cfg is not None and (cfg.source, cfg.unresolvable) == (".hydra/config.yaml", [])
    assert "root" not in cfg.tree["data"] and cfg.tree["seed"] == 0  # data.root is volatile
    (run / ".hydra" / "config.yaml").write_text("# nothing\n")
    assert read_config(open_run(run)) == CanonicalConfig({}, ".hydra/config.yaml", [])


def test_a_config_that_is_not_a_mapping_names_its_type(run: Path) -> None:
    (run / ".hydra" / "config.yaml").write_text("3\n")
    (run / runs.RESOLVED_CONFIG).unlink()
    with pytest.raises(UnusableRunError) as info:
        read_config(open_run(run))
    expected = ".hydra/config.yaml: expected a mapping of config keys, found int; regenerate the file"
    assert str(info.value) == f"{run}/{expected}"


def test_no_config_at_all(tmp_path: Path) -> None:
    assert read_config(open_run(tmp_path)) is None


def test_overrides_drop_volatile_keys_and_sort(run: Path) -> None:
    overrides = read_overrides(open_run(run))
    assert overrides is not None and any(o.startswith("hydra.run.dir=") for o in overrides)
    assert comparable_overrides(overrides) == ["seed=0"]
    given = ["optimizer.lr=0.1", "+data.root=/x", "hydra/launcher=basic", "~training.resume_from"]
    given.append("data=mnist")
    assert comparable_overrides(given) == ["data=mnist", "optimizer.lr=0.1"]


def test_overrides_must_be_a_list_of_strings(run: Path) -> None:
    (run / ".hydra" / "overrides.yaml").write_text("a: 1\n")
    with pytest.raises(UnusableRunError, match="expected a list of strings"):
        read_overrides(open_run(run))
    assert read_overrides(open_run(run.parent)) is None


def test_overrides_empty_and_exact_error(run: Path) -> None:
    (run / ".hydra" / "overrides.yaml").write_text("")
    assert read_overrides(open_run(run)) == []
    (run / ".hydra" / "overrides.yaml").write_text("- seed=0\n- 3\n")
    with pytest.raises(UnusableRunError) as info:
        read_overrides(open_run(run))
    assert str(info.value) == f"{run}/.hydra/overrides.yaml: expected a list of strings; regenerate the file"


def test_comparable_overrides_judge_the_key_only() -> None:
    given = [
        "seed=1",
        "optimizer.lr=0.1",
        "name=data.root=x",  # the value names a volatile key: kept
        "+hydra.job.name=x",
        "++data.root=/y",
        "~training.resume_from",
        "hydra/run/dir=/out",
        "tag=+~/",
        "note=ckpt_dir=x",  # the key is before the first "=" only
        "Xhydra.run.dir=1",  # only "+" and "~" prefixes are stripped
    ]
    assert comparable_overrides(given) == [
        "Xhydra.run.dir=1",
        "name=data.root=x",
        "note=ckpt_dir=x",
        "optimizer.lr=0.1",
        "seed=1",
        "tag=+~/",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "[2026-11-27 23:50:01,123][twinrun.trainers.loop][INFO] - epoch 1/2 train_loss=206.1 (1.23s)",
            "[twinrun.trainers.loop][INFO] - epoch 1/2 train_loss=206.1 (<duration>)",
        ),
        ("took 1.2s, then 12 ms and 3 us", "took <duration>, then <duration> and <duration>"),
        ("speed 123.4 it/s or 2.5s/it", "speed <rate> or <rate>"),
        ("elapsed 0:01:02.5", "elapsed <duration>"),
        ("started 2026-11-27T23:50:01", "started <time>"),
        # Only a leading bracketed timestamp is dropped; one later in the line is replaced.
        ("[2026-11-27T23:50:01] start at [2026-11-27 23:50:01.5]", " start at [<time>]"),
        ("lr 1E-3s and 1e+2 ms", "lr <duration> and <duration>"),
        # Spaces inside the parentheses; minutes only count in parentheses.
        ("( 1.5 s ) (2 min) took 3 min", "(<duration>) (<duration>) took 3 min"),
        ("4 ns 3 µs 2 us 1 ms 5 secs 6 sec 7 seconds 8s", " ".join(["<duration>"] * 8)),
        ("9 img/s 8 images/s 7 batches/s 6 steps/s 5 samples/s 4/s 3 s/it 2 it/s", " ".join(["<rate>"] * 8)),
        ("12:00:00 at 3:04:05.25", "<duration> at <duration>"),
        # Digits inside words and units inside words are not durations.
        ("v2s 5 samples x1.5s 5 it/sec", "v2s 5 samples x1.5s 5 it/sec"),
        # Not durations: values, counters, hex floats.
        ("3 steps of 8 samples, loss 0x1.9c3p+7, lr 1e-3", "3 steps of 8 samples, loss 0x1.9c3p+7, lr 1e-3"),
    ],
)
def test_normalize_log_line(line: str, expected: str) -> None:
    assert normalize_log_line(line) == expected


def test_normalize_replaces_the_run_path_as_a_whole_path() -> None:
    line = "saved /runs/a/weights.safetensors (not /runs/ab)"
    assert normalize_log_line(line, ("/runs/a",)) == "saved <run>/weights.safetensors (not /runs/ab)"
    assert normalize_log_line(line, ("/runs/a/weights.safetensors", "/runs/a")).startswith("saved <run> (")


def test_path_mask_puts_the_run_before_the_working_directory() -> None:
    mask = PathMask(["/work/outputs/run-1"], cwd="/work")
    assert (
        mask("ckpt /work/outputs/run-1/last.ckpt from /work/conf") == "ckpt <run>/last.ckpt from <cwd>/conf"
    )
    assert mask("/workshop") == "/workshop" and PathMask([], cwd="/")("/a/b") == "/a/b"


def test_path_mask_edge_cases() -> None:
    # A trailing slash on the run path does not stop it matching as a whole path.
    assert PathMask(["/runs/a/"])("/runs/a/x and /runs/a") == "<run>/x and <run>"
    assert PathMask(["", "/runs/a"])("x /runs/a y") == "x <run> y"  # an empty path masks nothing
    assert PathMask(["/w"], cwd="/w")("/w/x") == "<run>/x"  # the working directory is the run
    assert PathMask([], cwd="/w/")("/w/conf /wx") == "<cwd>/conf /wx"
    # Only slashes are stripped from the end of a path, not letters.
    assert PathMask(["/runs/X"], cwd="/wX/")("/runs/X/y /wX/c /runs/Y") == "<run>/y <cwd>/c /runs/Y"
    assert PathMask([])("/a/b") == "/a/b" and PathMask(["/a"])(None) is None  # not text: as it was
    assert PathMask(["/a"])(3) == 3


def test_absolute_spellings_and_path_mask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = make_run(tmp_path / "real")
    for name in ("link", "linkX", "link "):  # a name ends in whatever letter or space it ends in
        (tmp_path / name).symlink_to(real)
    monkeypatch.chdir(tmp_path)
    for name in ("linkX", "link "):
        spelled = str(tmp_path / name)
        assert sorted(absolute_spellings(open_run(name))) == sorted([str(real.resolve()), spelled])
    run = open_run("link")
    assert sorted(absolute_spellings(run)) == sorted([str(real.resolve()), str(tmp_path / "link")])
    assert absolute_spellings(open_run("/")) == ()  # "/" would hit every path
    mask = path_mask(run, open_run(tmp_path / "real"))
    text = f"{tmp_path}/link/w {real.resolve()}/w {tmp_path}/conf"
    assert mask(text) == "<run>/w <run>/w <cwd>/conf"
    assert path_mask(run, cwd=False)(text) == f"<run>/w <run>/w {tmp_path}/conf"
    assert path_mask(open_run("/"), cwd=False)("a / b") == "a / b"


def test_read_log_uses_the_mask_given(run: Path, tmp_path: Path) -> None:
    (run / "x.log").write_text(f"[2026-11-27 23:50:01]{run}/w took 2s\nsecond line\n")
    assert read_log(open_run(run), "x.log") == ["<run>/w took <duration>", "second line"]
    assert read_log(open_run(run), "x.log", PathMask([], cwd=str(tmp_path))) == [
        "<cwd>/run/w took <duration>",
        "second line",
    ]
    assert normalize_log_line(f"{tmp_path}/run", PathMask([str(run)])) == "<run>"


def test_find_logs_takes_top_level_log_files_only(run: Path) -> None:
    (run / "b.log").write_text("")
    (run / "dir.log").mkdir()
    (run / "sub").mkdir()
    (run / "sub" / "c.log").write_text("")
    (run / "notes.txt").write_text("")
    logs = find_logs(open_run(run))
    assert list(logs) == ["b.log", "vae_mnist.log"] and logs["b.log"] == run.resolve() / "b.log"


def test_a_parenthesized_count_is_not_a_duration() -> None:
    line = "resumed from checkpoints/step-00000004.pt (step 4) after (2.5s)"
    assert normalize_log_line(line) == "resumed from checkpoints/step-00000004.pt (step 4) after (<duration>)"
    assert normalize_log_line("(4 steps) (3 min)") == "(4 steps) (<duration>)"


def test_a_relative_run_name_is_not_masked_inside_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_run(tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "a" / "vae_mnist.log"
    log.write_text(f"loaded a batch of data into {tmp_path / 'a'}\n")
    assert read_log(open_run("a"), "vae_mnist.log") == ["loaded a batch of data into <run>"]


def test_read_log_normalizes_with_the_runs_own_path(tmp_path: Path) -> None:
    a, b = make_run(tmp_path / "a", jitter=1), make_run(tmp_path / "b", jitter=2)
    assert (a / "vae_mnist.log").read_text() != (b / "vae_mnist.log").read_text()  # control
    assert find_logs(open_run(a)) == {"vae_mnist.log": a.resolve() / "vae_mnist.log"}
    lines = read_log(open_run(a), "vae_mnist.log")
    assert lines == read_log(open_run(b), "vae_mnist.log")
    assert lines[0].endswith("run directory: <run>")


# --- weights ---------------------------------------------------------------------------------------------


def test_safetensors_source_reads_exact_bytes_in_file_order(run: Path) -> None:
    state = tiny_state_dict()
    with open_weights(open_run(run)) as src:
        assert src.kind == "safetensors"
        assert set(src.metas) == set(state)
        meta = src.metas["encoder.weight"]
        assert (meta.dtype, meta.shape, meta.nbytes) == ("float32", (4, 3), 48)
        assert src.metas["norm.num_batches_tracked"].shape == ()
        got = src.read("encoder.weight", 8, np.empty(16, dtype=np.uint8))
        expected = state["encoder.weight"].reshape(-1).view(torch.uint8)[8:24].numpy()
        assert (got == expected).all()


def test_missing_weights(tmp_path: Path) -> None:
    with pytest.raises(UnusableRunError) as info:
        open_weights(open_run(tmp_path))
    assert str(info.value) == (
        f"{tmp_path} has no weights (neither weights.safetensors nor trained_model.pt); "
        "point at the directory of a finished run"
    )


def test_weights_are_named_as_the_user_spelled_the_run(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    torch.save(tiny_state_dict(), tmp_path / "run" / LEGACY_WEIGHTS)  # safetensors wins over the legacy file
    with open_weights(open_run(tmp_path / "run")) as src:
        assert (src.kind, src.shown) == ("safetensors", f"{tmp_path}/run/weights.safetensors")
    (tmp_path / "run" / runs.WEIGHTS).unlink()
    with open_weights(open_run(tmp_path / "run")) as src:
        assert (src.kind, src.shown) == ("torch", f"{tmp_path}/run/{LEGACY_WEIGHTS}")


def test_legacy_weights_needing_code_only_with_trust_pickle(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    torch.save({"get": operator.attrgetter("real"), "w": torch.ones(2)}, tmp_path / "r" / LEGACY_WEIGHTS)
    with pytest.raises(UnusableRunError, match=r"GLOBAL operator\.attrgetter"):
        open_weights(open_run(tmp_path / "r"))
    with open_weights(open_run(tmp_path / "r"), trust_pickle=True) as src:
        assert set(src.metas) == {"w"}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"", "is empty"),
        (lambda data: data[:-7], "not a valid safetensors file"),
        (lambda data: b"this is a text file, not safetensors\n" * 3, "not a valid safetensors file"),
        (lambda data: data[:9] + b"!" + data[10:], "not a valid safetensors file"),
    ],
    ids=["empty", "truncated", "text", "corrupt-header"],
)
def test_damaged_safetensors(run: Path, damage, message: str) -> None:
    path = run / runs.WEIGHTS
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(UnusableRunError, match=message) as info:
        open_weights(open_run(run))
    assert "; " in str(info.value) and "\n" not in str(info.value)


def test_torch_save_file_named_safetensors(run: Path) -> None:
    torch.save(tiny_state_dict(), run / runs.WEIGHTS)
    with pytest.raises(UnusableRunError, match="not a valid safetensors file"):
        open_weights(open_run(run))


def test_legacy_state_dict(tmp_path: Path) -> None:
    run = make_legacy_run(tmp_path / "legacy")
    with open_weights(open_run(run)) as src:
        assert src.kind == "torch"
        assert src.metas["decoder.weight"].dtype == "float64"
        got = src.read("encoder.bias", 0, np.empty(16, dtype=np.uint8))
        assert (got == tiny_state_dict()["encoder.bias"].view(torch.uint8).numpy()).all()


def test_legacy_checkpoint_dict_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    torch.save({"epoch": 3, "model_state_dict": tiny_state_dict()}, tmp_path / "r" / LEGACY_WEIGHTS)
    with open_weights(open_run(tmp_path / "r")) as src:
        assert set(src.metas) == {f"model_state_dict/{k}" for k in tiny_state_dict()}
        # the inner state dict's type is a value too (only the file's own root state dict is not)
        assert src.leaves == {"epoch": 3, "model_state_dict": Container("dict", len(tiny_state_dict()))}


def test_legacy_pickled_module_is_read_without_running_it(tmp_path: Path) -> None:
    run = make_legacy_run(tmp_path / "legacy", module=True)
    with open_weights(open_run(run)) as src:
        assert set(src.metas) == set(TinyNet().state_dict())


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"garbage, not a torch file", "not a torch.save file")],
)
def test_legacy_damaged(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / LEGACY_WEIGHTS).write_bytes(content)
    with pytest.raises(UnusableRunError, match=message):
        open_weights(open_run(tmp_path / "r"))


def test_legacy_file_without_tensors_keeps_its_values(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    torch.save([1, 2, 3], tmp_path / "r" / LEGACY_WEIGHTS)
    with open_weights(open_run(tmp_path / "r")) as src:
        assert (src.metas, src.leaves) == ({}, {"": Container("list", 3), "0": 1, "1": 2, "2": 3})
