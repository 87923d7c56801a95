"""Every relative link in README.md, ARCHITECTURE.md and docs/ resolves: the file exists, and a
``#anchor`` names a heading of the target page under GitHub's slug rules (github-slugger: lower case,
punctuation other than ``-`` and ``_`` dropped, each space a ``-``, repeats suffixed ``-1``, ``-2``).

The checker has negative controls: a missing file, a missing anchor and a slug that only a wrong rule
would produce must be reported.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
HTML_ID = re.compile(r"<a\s+[^>]*(?:name|id)=\"([^\"]+)\"")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def doc_files(root: Path = ROOT) -> list[Path]:
    files = [root / "README.md", root / "ARCHITECTURE.md", *sorted((root / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file()]


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def _heading_text(raw: str) -> str:
    """What GitHub renders of a heading: code spans keep their content, links keep their text."""
    text = INLINE_CODE.sub(lambda m: m.group(2).strip(), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"<[^>]+>", "", text)


def slug(text: str) -> str:
    """github-slugger's slug of rendered heading text (without the repeat suffix)."""
    kept = (ch for ch in text.strip().lower() if ch in "-_ " or unicodedata.category(ch)[0] in "LNM")
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown page: heading slugs (repeats numbered) and explicit HTML ids."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ID.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(_heading_text(match.group(2)))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    """The link targets of a page, outside code blocks and code spans."""
    targets = []
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        ref = REFERENCE.match(line)
        if ref:
            targets.append(ref.group(1))
            continue
        targets.extend(LINK.findall(INLINE_CODE.sub("", line)))
    return targets


def broken_links(path: Path) -> list[str]:
    """``"<target>: <why>"`` for every relative link of ``path`` that does not resolve."""
    problems = []
    for target in links(path):
        if not target or EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{target}: no such file {dest}")
        elif anchor and dest.is_file() and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    return problems


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    assert pages, "docs/ holds no pages"
    assert [p for p in pages if f"]({p})" not in readme] == []


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Comparing two runs: `twinrun compare`", "comparing-two-runs-twinrun-compare"),
        ("On a SLURM cluster (submitit)", "on-a-slurm-cluster-submitit"),
        ("CI (`.github/workflows/ci.yml`, `nightly.yml`)", "ci-githubworkflowsciyml-nightlyyml"),
        ("Verifying a sweep: `twinrun verify -m`", "verifying-a-sweep-twinrun-verify--m"),
        ("twinrun — the front door", "twinrun--the-front-door"),
        ("snake_case and [a link](x.md)", "snake_case-and-a-link"),
    ],
)
def test_slugs_follow_github(heading: str, expected: str) -> None:
    assert slug(_heading_text(heading)) == expected


def test_the_checker_reports_missing_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Page A\n\n## Same\n\n## Same\n", encoding="utf-8")
    good = "[a](docs/a.md) [b](docs/a.md#page-a) [c](docs/a.md#same-1) [d](#top) [e](https://x.org/#nope)\n"
    bad = "[x](docs/missing.md) [y](docs/a.md#same-2) [z](docs/a.md#Page-A) [w](#nowhere)\n"
    code = "```\n[q](docs/in-a-fence.md)\n```\n`[r](docs/in-a-span.md)`\n"
    (tmp_path / "README.md").write_text("# Top\n\n" + good + code, encoding="utf-8")
    assert broken_links(tmp_path / "README.md") == []
    (tmp_path / "README.md").write_text("# Top\n\n" + bad, encoding="utf-8")
    problems = broken_links(tmp_path / "README.md")
    assert [p.split(":")[0] for p in problems] == [
        "docs/missing.md",
        "docs/a.md#same-2",
        "docs/a.md#Page-A",
        "#nowhere",
    ]
    assert doc_files(tmp_path) == [tmp_path / "README.md", tmp_path / "docs" / "a.md"]
