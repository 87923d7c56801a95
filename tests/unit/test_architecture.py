"""The package graph of ``src/twinrun`` is the one ARCHITECTURE.md draws, read statically (``ast``, every
import: module level, inside functions and under ``TYPE_CHECKING``):

- no import cycles between packages;
- ``record/`` and ``compare/`` import nothing from ``trainers/``, ``verify/``, ``testing/``,
  ``integrations/`` or the CLI;
- every package depends only on the packages the one-way flow allows
  (cli -> verify -> compare -> record -> config/errors; testing -> verify/compare; trainers and
  integrations -> record).

Each check has a negative control on a small fake tree.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "twinrun"
FOUNDATION = {"config", "errors"}
# package -> the packages it may import (keep in step with ARCHITECTURE.md's flow)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors"},
    "record": FOUNDATION,
    "compare": {"record", *FOUNDATION},
    "verify": {"compare", "record", *FOUNDATION},
    "golden": {"verify", "compare", "record", *FOUNDATION},
    "testing": {"golden", "verify", "compare", "record", *FOUNDATION},
    "trainers": {"record", *FOUNDATION},
    "integrations": {"record", *FOUNDATION},
    "cli": {"twinrun", "golden", "verify", "compare", *FOUNDATION},
    "__main__": {"cli"},
    "twinrun": {"compare", "record", "verify"},  # the lazy public API (twinrun/__init__.py)
}
INNER = {"record", "compare"}
OUTER = {"trainers", "verify", "golden", "testing", "integrations", "cli", "__main__"}


def _module_name(path: Path, root: Path) -> str:
    parts = ["twinrun", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str, root: Path) -> str | None:
    """The architectural unit of a ``twinrun...`` module: its subpackage or top-level module."""
    parts = module.split(".")
    if parts[0] != "twinrun":
        return None
    return parts[1] if len(parts) > 1 else "twinrun"


def _imports(path: Path, root: Path) -> Iterator[tuple[str, int]]:
    """(imported twinrun module, line) for every import in ``path``, relative imports resolved."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base, node.lineno
            for alias in node.names:  # `from twinrun import record` imports the package record
                yield f"{base}.{alias.name}", node.lineno


def package_edges(root: Path = SRC) -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> the ``file:line`` places that make the edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        source = _unit(_module_name(path, root), root)
        for imported, line in _imports(path, root):
            target = _unit(imported, root)
            if target is None or target == source:
                continue
            if target != "twinrun" and not ((root / target).is_dir() or (root / f"{target}.py").is_file()):
                target = "twinrun"  # `from twinrun import __version__`: a name of the top-level package
            place = f"{path.relative_to(root)}:{line}"
            if target != source and place not in edges.setdefault((source, target), []):
                edges[(source, target)].append(place)
    return edges


def cycles(edges: Mapping[tuple[str, str], object]) -> list[list[str]]:
    """Every elementary cycle's nodes, found by depth-first search from each node (small graphs)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    found: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                k = path.index(min(path))
                found.add(tuple(path[k:] + path[:k]))  # one rotation per cycle
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return [list(c) for c in sorted(found)]


def module_edges(package: str, root: Path = SRC) -> dict[tuple[str, str], list[str]]:
    """(importing module, imported module) -> places, between the modules of one package and its
    subpackages (``compare``: ``runs``, ``judge.kinds``, ``read.run_reader``...; ``__init__`` files aside)."""
    prefix = f"twinrun.{package}."
    base = root / package

    def name(path: Path) -> str:
        return ".".join(path.relative_to(base).with_suffix("").parts)

    files = [path for path in sorted(base.rglob("*.py")) if path.stem != "__init__"]
    names = {name(path) for path in files}
    edges: dict[tuple[str, str], list[str]] = {}
    for path in files:
        source = name(path)
        for imported, line in _imports(path, root):
            if not imported.startswith(prefix):
                continue
            parts = imported[len(prefix) :].split(".")
            # the longest module the import names: `from ...judge.kinds import Outcome` -> judge.kinds
            target = next(
                (".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in names), None
            )
            place = f"{path.relative_to(root)}:{line}"
            if target and target != source and place not in edges.get((source, target), []):
                edges.setdefault((source, target), []).append(place)
    return edges


# compare/'s pipeline, one way: readers know nothing of judging or reporting; the report (its model and
# renderers) knows no judge; a judge may use the report's model (the outcome's vocabulary), never a renderer.
COMPARE_LAYERS: dict[str, set[str]] = {
    "read": {"read"},
    "report": {"read", "report"},
    "judge": {"read", "judge", "report.model"},
}


def compare_layer_problems(edges: Mapping[tuple[str, str], list[str]]) -> list[str]:
    problems = []
    for (source, target), places in sorted(edges.items()):
        allowed = COMPARE_LAYERS.get(source.split(".")[0])
        if allowed is None:  # runs.py, the pipeline: uses every stage
            continue
        if not any(target == a or target.startswith(f"{a}.") for a in allowed):
            problems.append(f"{source} -> {target} ({', '.join(places)}): against read -> judge -> report")
    return problems


def layering_problems(edges: Mapping[tuple[str, str], list[str]]) -> list[str]:
    problems = []
    for (source, target), places in sorted(edges.items()):
        if source in INNER and target in OUTER:
            problems.append(f"{source} imports {target} ({', '.join(places)}): it must not")
        elif target not in ALLOWED.get(source, set()):
            problems.append(f"{source} -> {target} ({', '.join(places)}) is not in ARCHITECTURE.md's flow")
    return problems


def test_the_source_tree_is_read() -> None:
    edges = package_edges()
    assert ("trainers", "record") in edges and ("verify", "compare") in edges  # the reader sees imports
    assert {"record", "compare", "verify", "testing", "trainers"} <= {a for a, _ in edges}


def test_no_import_cycles_between_packages() -> None:
    assert cycles(package_edges()) == []


def test_no_import_cycles_between_the_modules_of_compare_and_record() -> None:
    """Readers, judges and reports import one way; function-level and TYPE_CHECKING imports count."""
    for package in ("compare", "record"):
        assert cycles(module_edges(package)) == [], package


def test_control_the_module_check_catches_a_cycle_inside_a_package(fake_tree: Path) -> None:
    (fake_tree / "compare" / "judge").mkdir()
    (fake_tree / "compare" / "judge" / "__init__.py").write_text("")
    (fake_tree / "compare" / "judge" / "kinds.py").write_text(
        "def f():\n    from twinrun.compare.runs import x\n"
    )
    (fake_tree / "compare" / "runs.py").write_text("from ..record import runs\n")
    assert module_edges("compare", fake_tree) == {("judge.kinds", "runs"): ["compare/judge/kinds.py:2"]}
    assert cycles(module_edges("compare", fake_tree)) == []
    (fake_tree / "compare" / "runs.py").write_text("from twinrun.compare.judge import kinds\n")
    assert cycles(module_edges("compare", fake_tree)) == [["judge.kinds", "runs"]]


def test_compare_is_read_then_judge_then_report() -> None:
    edges = module_edges("compare")
    assert ("judge.kinds", "read.artifacts") in edges and (
        "runs",
        "judge.kinds",
    ) in edges  # the reader sees them
    assert compare_layer_problems(edges) == []


def test_control_the_stage_check_catches_a_reader_that_judges_and_a_judge_that_renders(
    fake_tree: Path,
) -> None:
    for stage, module, text in [
        ("read", "run_reader", "from twinrun.compare.judge.kinds import Outcome\n"),
        ("judge", "kinds", "from twinrun.compare.report.model import Report\nfrom ..report import render\n"),
        ("report", "model", "from twinrun.compare.read.limits import RawNumber\n"),
    ]:
        (fake_tree / "compare" / stage).mkdir()
        (fake_tree / "compare" / stage / "__init__.py").write_text("")
        (fake_tree / "compare" / stage / f"{module}.py").write_text(text)
    for module in ("read/limits.py", "report/render.py", "judge/__init__.py"):
        (fake_tree / "compare" / module).write_text("")
    (fake_tree / "compare" / "runs.py").write_text("from twinrun.compare.report import render\n")
    problems = [p.split(" (")[0] for p in compare_layer_problems(module_edges("compare", fake_tree))]
    assert problems == ["judge.kinds -> report.render", "read.run_reader -> judge.kinds"]


def test_packages_import_only_along_the_one_way_flow() -> None:
    assert layering_problems(package_edges()) == []


def test_the_architecture_page_names_every_package() -> None:
    text = (SRC.parents[1] / "ARCHITECTURE.md").read_text(encoding="utf-8")
    packages = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())
    assert [p for p in packages if f"`{p}/`" not in text] == []


@pytest.fixture
def fake_tree(tmp_path: Path) -> Path:
    root = tmp_path / "twinrun"
    for package in ("record", "compare", "trainers"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "errors.py").write_text("")
    (root / "record" / "runs.py").write_text("from twinrun.errors import X\n")
    (root / "compare" / "runs.py").write_text("from ..record import runs\n")
    (root / "trainers" / "loop.py").write_text("def f():\n    import twinrun.record.runs\n")
    return root


def test_controls_the_checks_catch_a_cycle_and_a_wrong_way_import(fake_tree: Path) -> None:
    edges = package_edges(fake_tree)
    assert set(edges) == {("record", "errors"), ("compare", "record"), ("trainers", "record")}
    assert cycles(edges) == [] and layering_problems(edges) == []
    # record reaching up into the trainers (inside a function, relatively): both checks object
    (fake_tree / "record" / "trace.py").write_text("def g():\n    from ..trainers import loop\n")
    (fake_tree / "trainers" / "loop.py").write_text("from twinrun.compare.runs import x\n")
    edges = package_edges(fake_tree)
    assert edges[("record", "trainers")] == ["record/trace.py:2"]
    assert cycles(edges) == [["compare", "record", "trainers"]]
    assert [p.split(" (")[0] for p in layering_problems(edges)] == [
        "record imports trainers",
        "trainers -> compare",
    ]
    assert cycles({("a", "b"): 1, ("b", "a"): 1, ("b", "c"): 1}) == [["a", "b"]]
