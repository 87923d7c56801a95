"""The golden file's layout: reads back unchanged, one row per line, key order kept in rows."""

from __future__ import annotations

import json

import pytest

from twinrun.golden.layout import FORMAT, GoldenError, dumps, load_golden, write_golden


def _golden() -> dict:
    rows = [{"step": s, "loss": f"0x1.{s}p+1", "params": {"z": "1", "a": "2"}} for s in range(1, 4)]
    return {
        "format": FORMAT,
        "case": {"app": None, "overrides": []},
        "artifacts": {},
        "bands": {},
        "trace": {"rows": rows, "full": rows, "steps": 3},
    }


def test_dumps_reads_back_unchanged_with_one_row_per_line(tmp_path) -> None:
    golden = _golden()
    text = dumps(golden)
    assert json.loads(text) == golden
    lines = text.splitlines()
    assert sum('"step":' in line for line in lines) == 6  # each row on a line of its own
    assert '{"step":1,"loss":"0x1.1p+1","params":{"z":"1","a":"2"}}' in text  # model order, not sorted
    path = write_golden(tmp_path / "sub" / "g.json", golden)
    assert load_golden(path) == golden
    assert dumps(load_golden(path)) == text  # stable: rewriting changes nothing


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("{not json", "not a readable golden file"),
        ('{"format": "other/1"}', "is not a twinrun-golden/1 file"),
        (json.dumps({"format": FORMAT, "case": [], "artifacts": {}, "bands": {}}), "'case' is missing"),
    ],
)
def test_unusable_golden_is_one_line(tmp_path, content, message) -> None:
    path = tmp_path / "g.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(GoldenError, match=message) as info:
        load_golden(path)
    assert "\n" not in str(info.value)
