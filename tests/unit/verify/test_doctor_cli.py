"""``twinrun doctor`` in process: the versions, exit 0 when torch and torchvision match, else one line."""

from __future__ import annotations

from twinrun.cli import main
from twinrun.record import versions


def test_doctor_lists_versions_and_passes_a_matching_pair(monkeypatch, capsys) -> None:
    rows = [("torch", "2.14.1"), ("torchvision", "0.29.1")]
    monkeypatch.setattr(versions, "doctor_rows", lambda: (rows, None))
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch        2.14.1\n" in out and "ok: torch and torchvision match" in out


def test_doctor_fails_a_mismatch_in_one_line(monkeypatch, capsys) -> None:
    problem = versions.mismatch_message("2.14.1", "0.21.0")
    rows = [("torch", "2.14.1"), ("torchvision", "0.21.0")]
    monkeypatch.setattr(versions, "doctor_rows", lambda: (rows, problem))
    assert main(["doctor"]) == 2
    captured = capsys.readouterr()
    assert "torchvision  0.21.0" in captured.out and "ok:" not in captured.out
    assert captured.err == f"twinrun doctor: error: {problem}\n"
    assert captured.err.count("\n") == 1


def test_twinrun_help_has_three_examples_and_the_docs(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    examples = out.split("examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[:2] for line in examples] == [
        ["twinrun", "doctor"],
        ["twinrun", "verify"],
        ["twinrun", "compare"],
    ]
    assert "docs: README.md and docs/" in out
