"""Fuzz: hostile YAML/JSON/CSV/TensorBoard files in a copy of a small run never crash ``compare``.

hypothesis builds files that nest deeply, repeat (aliases, keys, columns), lie about their sizes (record
lengths, numbers past any float) or are plain noise, and puts one in run B (run A keeps a benign file of
the same name). ``compare_runs`` must answer identical, different or unusable (exit 0/1/2; anything else
is a crash), with a bounded peak of Python memory, and open no file outside the two runs (an audit hook
watches every ``open``).
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import fake_runs as fr
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.runs import compare_runs

BUDGET = 64 << 20  # bytes of Python memory beyond 10x the run's size


def _nested(depth: int, kind: str) -> str:
    return {"list": "[" * depth + "]" * depth, "map": "{a: " * depth + "1" + "}" * depth}[kind]


def _alias_bomb(levels: int, width: int) -> str:
    lines = ["a0: &a0 [x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join(f"*a{i - 1}" for _ in range(width)) + "]")
    return "\n".join(lines) + "\n"


yaml_text = st.one_of(
    st.builds(_nested, st.integers(1, 5000), st.sampled_from(["list", "map"])),
    st.builds(_alias_bomb, st.integers(2, 12), st.integers(2, 10)),
    st.builds(
        lambda n, k: "".join(f"{k}: {i}\n" for i in range(n)), st.integers(1, 50), st.sampled_from(["k", "1"])
    ),
    st.builds(lambda d: f"big: {'9' * d}\n", st.integers(1, 20_000)),
    st.text(max_size=300),
)
json_text = st.one_of(
    st.builds(lambda d: "[" * d + "]" * d, st.integers(1, 50_000)),
    st.builds(lambda d: '{"a": ' * d + "1" + "}" * d, st.integers(1, 5000)),
    st.builds(lambda e: f'{{"x": 1e{e}}}', st.integers(300, 10**6)),
    st.builds(lambda d: f'{{"x": {"7" * d}}}', st.integers(1, 20_000)),
    st.builds(lambda n: "{" + ", ".join('"k": 1' for _ in range(n)) + "}", st.integers(1, 100)),
    st.just('{"x": NaN, "y": -Infinity}'),
    st.text(max_size=300),
)
csv_text = st.one_of(
    st.builds(lambda n: ",".join(["c"] * n) + "\n" + ",".join(["1"] * n) + "\n", st.integers(1, 2000)),
    st.builds(lambda n: "a\n" + '"' + "x" * n + "\n", st.integers(1, 200_000)),
    st.builds(lambda n: "a,b\n" + "1,2\n" * n, st.integers(0, 5000)),
    st.just("a,b\n1,\x00\n"),
    st.text(max_size=300),
)


def _record(data: bytes, claimed: int | None = None) -> bytes:
    length = len(data) if claimed is None else claimed
    return struct.pack("<Q", length) + b"\0" * 4 + data + b"\0" * 4


events_bytes = st.one_of(
    st.builds(lambda n: _record(b"", 1 << n), st.integers(10, 62)),
    st.builds(lambda d: _record(d), st.binary(max_size=200)),
    st.builds(lambda n, d: _record(d) * n, st.integers(1, 2000), st.binary(max_size=20)),
    st.binary(max_size=300),
)

hostile = st.one_of(
    st.tuples(st.just("extra/config.yaml"), yaml_text.map(str.encode)),
    st.tuples(st.just("extra/table.json"), json_text.map(str.encode)),
    st.tuples(st.just("extra/rows.jsonl"), json_text.map(lambda t: (t + "\n").encode())),
    st.tuples(st.just("extra/table.csv"), csv_text.map(str.encode)),
    st.tuples(st.just("extra/tb/events.out.tfevents.1.host.2.0"), events_bytes),
)
BENIGN = {
    ".yaml": b"a: 1\n",
    ".json": b'{"a": 1}\n',
    ".jsonl": b'{"a": 1}\n',
    ".csv": b"a\n1\n",
}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fr.make_run(tmp_path_factory.mktemp("fuzz") / "a", jitter=1)


_WATCH: dict[str, Any] = {"on": False, "seen": [], "installed": False}


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _WATCH["on"] and event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        _WATCH["seen"].append(os.fsdecode(args[0]))


@pytest.fixture(scope="module")
def opened() -> list[str]:
    """Paths ``open``-ed while ``_WATCH["on"]`` (an audit hook cannot be removed: it is switched)."""
    if not _WATCH["installed"]:
        sys.addaudithook(_hook)
        _WATCH["installed"] = True
    return _WATCH["seen"]


def _outside(paths: list[str], roots: list[Path]) -> list[str]:
    """Opened paths outside the runs, leaving out Python's own imports (modules, zoneinfo, locale)."""
    allowed = [str(r) for r in roots] + [sys.prefix, sys.base_prefix, "/usr/lib", "/dev/null"]
    return [p for p in paths if not p.startswith(tuple(allowed)) and not p.endswith((".py", ".pyc", ".so"))]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(case=hostile, same=st.booleans())
def test_hostile_files_give_a_verdict_or_one_line(
    small_run: Path, opened: list[str], tmp_path_factory, case, same: bool
) -> None:
    rel, data = case
    root = tmp_path_factory.mktemp("hostile")
    a, b = root / "a", root / "b"
    shutil.copytree(small_run, a)
    shutil.copytree(small_run, b)
    benign = data if same else BENIGN.get(Path(rel).suffix, b"")
    for run, content in ((a, benign), (b, data)):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(content)
    size = sum(p.stat().st_size for p in b.rglob("*") if p.is_file())
    rels = (str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    others = [r for r in rels if not r.startswith("extra/")]  # the hostile file decides alone
    opened.clear()
    tracemalloc.start()
    _WATCH["on"] = True
    try:
        report = compare_runs(a, b, ignore=others)
        code = report.exit_code
    except UnusableRunError as exc:
        code = 2
        assert "\n" not in str(exc)
    finally:
        _WATCH["on"] = False
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert code in (0, 1, 2)
    assert code != 0 or benign == data, (
        rel,
        data[:80],
    )  # a hostile file against a benign one is never identical
    assert peak < 10 * size + BUDGET, (rel, peak)
    assert not _outside(opened, [a, b, Path.cwd()]), _outside(opened, [a, b, Path.cwd()])
    shutil.rmtree(root)
