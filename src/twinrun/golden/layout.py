"""The golden file on disk: stable key order, one trace row per line, written atomically.

A golden is reviewed in pull requests, so its layout is fixed: top-level keys sorted, every small value on
one line, and each list of rows with one row per line, so that a changed step is one changed line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twinrun.errors import TwinrunError
from twinrun.record.runs import write_text

FORMAT = "twinrun-golden/1"
ROW_LISTS = ("rows", "full", "kept", "per_step")  # lists written one item per line


class GoldenError(TwinrunError):
    """A golden file that cannot be used (missing, malformed, another format); one line."""


def _compact(value: Any, sort: bool = True) -> str:
    return json.dumps(value, sort_keys=sort, separators=(",", ":"))


def _dump(value: Any, indent: int, key: str | None = None) -> str:
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(value, dict) and value and key not in ("params", "rng", "shape"):
        leaves = all(not isinstance(v, dict) and len(_compact(v)) < 60 for v in value.values())
        if leaves and len(_compact(value)) < 160:
            return _compact(value)
        items = [f"{inner}{json.dumps(k)}: {_dump(value[k], indent + 1, k)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and key in ROW_LISTS:
        # Rows keep their order of keys: a trace row's parameters are in model order, which is what
        # "the first differing parameter" means.
        return "[\n" + ",\n".join(inner + _compact(v, sort=False) for v in value) + "\n" + pad + "]"
    return _compact(value)


def dumps(golden: dict[str, Any]) -> str:
    """The file's text: sorted keys, rows one per line (``json.loads`` reads it back unchanged)."""
    return _dump(golden, 0) + "\n"


def write_golden(path: str | Path, golden: dict[str, Any]) -> Path:
    """Write ``golden`` to ``path`` atomically (temp + rename), creating its folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, dumps(golden))
    return target


def load_golden(path: str | Path) -> dict[str, Any]:
    """Read and check a golden file; anything unusable is one :class:`GoldenError` line."""
    p = Path(path)
    if not p.is_file():
        raise GoldenError(f"{path} does not exist; record it with `twinrun golden record`")
    try:
        golden = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise GoldenError(f"{path} is not a readable golden file ({reason}); record it again") from None
    if not isinstance(golden, dict) or golden.get("format") != FORMAT:
        found = golden.get("format") if isinstance(golden, dict) else type(golden).__name__
        raise GoldenError(f"{path} is not a {FORMAT} file (format {found!r}); record it again")
    for key, kind in (("case", dict), ("artifacts", dict), ("bands", dict)):
        if not isinstance(golden.get(key), kind):
            raise GoldenError(f"{path}: '{key}' is missing or malformed; record the golden again")
    return golden
