"""The rows every figure produces and the markdown-ish table they are printed as."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HEADER = ("figure", "value", "target", "met?", "command")


@dataclass(frozen=True)
class Row:
    """One measured figure; ``met`` is ``None`` where the figure has no target (informational)."""

    figure: str
    value: str
    target: str = "—"
    met: bool | None = None
    command: str = ""

    def cells(self) -> tuple[str, str, str, str, str]:
        met = "—" if self.met is None else ("yes" if self.met else "**NO**")
        return (self.figure, self.value, self.target, met, self.command)


def _cell(text: str) -> str:
    # A pipe inside a cell would split it; newlines would break the row.
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows: Sequence[Row]) -> str:
    """A markdown table (GitHub flavour) of ``rows``, columns padded so it also reads as plain text."""
    table = [HEADER, *(tuple(_cell(c) for c in row.cells()) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table]
    lines = [f"| {line} |" for line in lines]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)
