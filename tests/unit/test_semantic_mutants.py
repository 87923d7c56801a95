"""tests/mutation/semantic.toml and its runner: the catalogue loads, every mutant still applies to the code
(so it cannot go stale silently) and names test files that exist; broken catalogues are refused."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("semantic_mutants", ROOT / "tools" / "semantic_mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


sm = _runner()
MUTANTS = sm.load()


def test_the_catalogue_loads_with_unique_ids_and_enough_mutants() -> None:
    ids = [m.id for m in MUTANTS]
    assert len(ids) >= 30  # the catalogue only grows: a mutant removed must be replaced, not dropped
    assert len(set(ids)) == len(ids)
    assert all(m.why.strip() and m.kill for m in MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_every_mutant_applies_and_names_existing_tests(mutant) -> None:
    assert sm.problem(mutant) is None
    for test in mutant.kill:
        assert (ROOT / test.split("::")[0]).is_file(), test


def test_a_find_text_absent_or_twice_is_a_problem(tmp_path: Path) -> None:
    source = tmp_path / "src" / "twinrun" / "m.py"
    source.parent.mkdir(parents=True)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_m.py").write_text("")
    mutant = sm.Mutant("m", "m.py", "x = 1", "x = 2", ("tests/test_m.py",), "why")
    source.write_text("x = 1\n")
    assert sm.problem(mutant, tmp_path) is None  # control: once, tests exist
    source.write_text("y = 1\n")
    assert "occurs 0 times" in sm.problem(mutant, tmp_path)
    source.write_text("x = 1\nx = 1\n")
    assert "occurs 2 times" in sm.problem(mutant, tmp_path)
    source.write_text("x = 1\n")
    gone = dataclasses.replace(mutant, kill=("tests/test_gone.py::test_x",))
    assert "missing test files" in sm.problem(gone, tmp_path)
    assert "no file" in sm.problem(dataclasses.replace(mutant, file="other.py"), tmp_path)


def test_duplicated_ids_are_refused(tmp_path: Path) -> None:
    entry = '[[mutant]]\nid = "{}"\nfile = "m.py"\nfind = "a"\nreplace = "b"\nkill = ["t.py"]\nwhy = "w"\n'
    catalogue = tmp_path / "semantic.toml"
    catalogue.write_text(entry.format("one") + entry.format("two"))
    assert [m.id for m in sm.load(catalogue)] == ["one", "two"]  # control: distinct ids load
    catalogue.write_text(entry.format("one") + entry.format("one"))
    with pytest.raises(ValueError, match="duplicated mutant ids: one"):
        sm.load(catalogue)
