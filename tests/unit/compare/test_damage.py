"""Property: one random damage to one file of one twin is never called identical, unless shown neutral.

A real run directory (the VAE trainer on tiny synthetic data, trained once per session) is copied; one
file of the copy gets one damage (a flipped byte, a truncation, a deletion, a duplicated line, a directory
or a symlink in its place). ``compare_runs`` must then say different (1) or unusable (2). Exit 0 is
allowed only when the report names the volatile field the damage hit (the byte rule) and an independent
reading of the damaged file shows the damage neutral (a flipped bit in a timestamp of a log, a zip
header's modification time). Run it in the ``deep`` profile
for many examples: ``HYPOTHESIS_PROFILE=deep pytest tests/unit/compare/test_damage.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.helpers import damages
from twinrun.compare.judge.sections import _comparable_row
from twinrun.compare.read.artifacts import DEFAULT_IGNORE, matching_pattern
from twinrun.compare.read.run_reader import UnusableRunError, comparable_overrides, normalize_log_line
from twinrun.compare.runs import compare_runs
from twinrun.config import canonicalize

DAMAGES = ("flip", "truncate", "delete", "duplicate_line", "directory", "dangling_symlink", "symlink_other")
EXAMPLES = max(12, settings().max_examples)  # deep: 60


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from twinrun.testing.compose import compose_config
    from twinrun.trainers.apps import vae_mnist

    run = tmp_path_factory.mktemp("damage") / "a"
    overrides = ["data=synthetic", "data.train_samples=64", "data.test_samples=32", "training.epochs=1"]
    vae_mnist.train(compose_config("vae_mnist", [*overrides, "device=cpu", "seed=5"]), run)
    return run


def _files(run: Path) -> list[str]:
    """The files compare judges (the run's lock file and other ignored names left out)."""
    rels = (str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    return sorted(rel for rel in rels if matching_pattern(rel, False, DEFAULT_IGNORE) is None)


def _damage(path: Path, kind: str, where: float, mask: int, other: Path) -> None:
    data = path.read_bytes()
    at = min(int(where * len(data)), max(len(data) - 1, 0))
    if kind == "flip" and data:
        path.write_bytes(data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :])
    elif kind == "truncate":
        path.write_bytes(data[:at])
    elif kind == "duplicate_line":
        lines = data.splitlines(keepends=True) or [b""]
        i = min(int(where * len(lines)), len(lines) - 1)
        path.write_bytes(b"".join(lines[: i + 1] + lines[i:]))
    else:
        path.unlink()
        if kind == "directory":
            path.mkdir()
        elif kind == "dangling_symlink":
            path.symlink_to(path.parent / "does-not-exist")
        elif kind == "symlink_other":
            path.symlink_to(other)


def _reading(rel: str, path: Path) -> Any:
    """An independent reading of what the comparer is meant to judge in ``rel`` (raises if unreadable)."""
    import numpy as np
    import torch
    import yaml
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(rel)
    if rel.endswith(".log"):
        return [
            normalize_log_line(x) for x in path.read_text().replace(str(path.parent), "<run>").splitlines()
        ]
    if rel == ".hydra/overrides.yaml":
        return comparable_overrides(yaml.safe_load(path.read_text()))
    if rel == ".hydra/hydra.yaml":
        hydra = yaml.safe_load(path.read_text())["hydra"]
        return hydra["runtime"]["choices"], comparable_overrides(hydra["overrides"]["task"])
    if rel.endswith(".yaml"):
        return canonicalize(yaml.safe_load(path.read_text()))
    if rel == "env.json":
        env = json.loads(path.read_text())
        assert isinstance(env, dict)
        return "context"  # the environment never decides: any readable object is neutral
    if rel == "metrics.jsonl":
        return [_comparable_row(json.loads(x)) for x in path.read_text().splitlines() if x.strip()]
    if rel.endswith((".json", ".jsonl")):
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    if rel.endswith(".png"):
        with Image.open(path) as image:
            return np.array(image).tobytes()
    if rel.endswith(".safetensors"):
        from safetensors.torch import load_file

        return {
            k: (v.dtype, v.shape, v.view(-1).view(torch.uint8).numpy().tobytes())
            for k, v in load_file(path).items()
        }
    if rel.endswith(".pt"):
        return repr(_tensor_bytes(torch.load(path, weights_only=True)))
    return path.read_bytes()


def _tensor_bytes(obj: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return (obj.dtype, tuple(obj.shape), obj.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    if isinstance(obj, dict):
        return {k: _tensor_bytes(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_tensor_bytes(v) for v in obj]
    return obj


def _neutral(rel: str, before: Path, after: Path) -> bool:
    try:
        return _reading(rel, after) == _reading(rel, before)
    except Exception:
        return False


@settings(max_examples=EXAMPLES)
@given(data=st.data())
@example(data=None)  # the explicit cases below, whatever the draw
def test_one_damage_is_never_identical(real_run: Path, tmp_path_factory, data) -> None:
    files = _files(real_run)
    cases = (
        [
            ("metrics.jsonl", "flip", 0.5, 1),
            ("trace.jsonl", "duplicate_line", 0.5, 1),
            ("checkpoints/step-00000001.pt", "truncate", 0.5, 1),
            ("weights.safetensors", "directory", 0.0, 1),
            ("resolved_config.yaml", "dangling_symlink", 0.0, 1),
            ("images/samples.png", "flip", 0.7, 8),
            ("manifest.json", "symlink_other", 0.0, 1),
        ]
        if data is None
        else [
            (
                data.draw(st.sampled_from(files), label="file"),
                data.draw(st.sampled_from(DAMAGES), label="damage"),
                data.draw(st.floats(0, 1), label="where"),
                data.draw(st.integers(1, 255), label="mask"),
            )
        ]
    )
    for rel, kind, where, mask in cases:
        root = tmp_path_factory.mktemp("damaged")
        twin = root / "b"
        shutil.copytree(real_run, twin, symlinks=True)
        other = twin / next(f for f in files if f != rel and not f.endswith(".pt"))
        _damage(twin / rel, kind, where, mask, other)
        try:
            report = compare_runs(real_run, twin)
            code = report.exit_code
        except UnusableRunError:
            code = 2
        if code == 0:
            # The byte rule: a damaged file may pass only as a named volatile field it hit (a log's
            # timestamp), or as context (env.json) or a tensor file its reader read value by value.
            entry = next(e for e in report.sections["files"].files if e.path == rel)
            assert entry.masked or not entry.decisive or entry.kind in ("tensors", "weights"), entry
            assert _neutral(rel, real_run / rel, twin / rel), (rel, kind, where, mask)
        shutil.rmtree(root)


@pytest.fixture(scope="module")
def extended_run(real_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real run with files of the kinds a trainer run lacks (CSV, TensorBoard, RGB and palette
    pictures, a YAML with an integer key)."""
    run = tmp_path_factory.mktemp("extended") / "a"
    shutil.copytree(real_run, run, symlinks=True)
    damages.add_extras(run)
    return run


def test_an_undamaged_copy_of_the_extended_run_is_identical(extended_run: Path, tmp_path: Path) -> None:
    """The negative control of every semantic damage below."""
    shutil.copytree(extended_run, tmp_path / "b", symlinks=True)
    assert compare_runs(extended_run, tmp_path / "b").exit_code == 0


@pytest.mark.parametrize("name", sorted(damages.DAMAGES))
def test_one_semantic_damage_is_never_identical(extended_run: Path, tmp_path: Path, name: str) -> None:
    """A type, a key's type, a container, a flag, a member, a frame, a channel: never "identical".

    Under the byte rule only a named volatile field may be excused, and none of these is one.
    """
    twin = tmp_path / "b"
    shutil.copytree(extended_run, twin, symlinks=True)
    rel = damages.apply(twin, name)
    folder = str(Path(rel).parent) + "/" if "tfevents" in rel else rel
    # Every other file ignored: the verdict is the damaged file's alone (and each compare is fast).
    others = [f for f in _files(extended_run) if not f.startswith(folder)]
    try:
        report = compare_runs(extended_run, twin, ignore=others)
    except UnusableRunError as exc:  # refused: a duplicate key, a damaged stream
        assert "\n" not in str(exc)
        return
    entries = {e.path: e for e in report.sections["files"].files}
    key = rel if rel in entries else str(Path(rel).parent / "events.out.tfevents.*")
    assert report.exit_code == 1 and entries[key].differs, (name, entries.get(key))
