"""Reading run directories: artifacts, foreign Hydra configs, log normalization, weights sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.helpers.fake_runs import TinyNet, make_legacy_run, make_run, tiny_state_dict
from twinrun.compare.run_reader import (
    PathMask,
    UnusableRunError,
    comparable_overrides,
    find_logs,
    normalize_log_line,
    open_run,
    read_config,
    read_json,
    read_jsonl,
    read_log,
    read_overrides,
)
from twinrun.compare.weights_reader import LEGACY_WEIGHTS, open_weights
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
    with pytest.raises(UnusableRunError, match=r"has no weights \(neither weights.safetensors nor trained_"):
        open_weights(open_run(tmp_path))


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
        assert src.leaves == {"epoch": 3}


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
        assert (src.metas, src.leaves) == ({}, {"0": 1, "1": 2, "2": 3})
