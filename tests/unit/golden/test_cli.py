"""``twinrun golden`` as the user calls it (``main``): record --from, check --run, calibrate --from."""

from __future__ import annotations

import json

from tests.helpers.fake_runs import edit_jsonl, make_twins
from twinrun.cli import main
from twinrun.record import runs


def test_record_check_calibrate_round_trip(tmp_path, capsys) -> None:
    a, b = make_twins(tmp_path)
    golden = tmp_path / "golden" / "case.json"
    assert main(["golden", "record", "--from", str(a), "-o", str(golden)]) == 0
    assert "golden written to" in capsys.readouterr().out
    assert main(["golden", "check", str(golden), "--run", str(b)]) == 0
    assert "PASSED" in capsys.readouterr().out
    # Negative control: the trace's loss at step 2 changed.
    edit_jsonl(b, runs.TRACE, lambda rows: rows[1].update(loss=(1.5).hex()))
    html = tmp_path / "report.html"
    assert main(["golden", "check", str(golden), "--run", str(b), "--json", "--html", str(html)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["verdict"], report["divergence"]["step"]) == ("changed", 2)
    assert "<svg" in html.read_text()
    assert main(["golden", "check", str(golden), "--run", str(b), "--markdown"]) == 1
    assert "### :x: golden" in capsys.readouterr().out
    assert main(["golden", "calibrate", str(golden), "--from", str(b)]) == 0
    bands = json.loads(golden.read_text())["bands"]
    assert bands["source"].startswith("calibrated: 2 x the range over 2 runs")


def test_unusable_input_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    assert main(["golden", "check", str(tmp_path / "missing.json"), "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "twinrun golden: error:" in err and "does not exist" in err
    golden = tmp_path / "g.json"
    a, _ = make_twins(tmp_path)
    assert main(["golden", "record", "--from", str(a), "-o", str(golden)]) == 0
    assert main(["golden", "check", str(golden)]) == 2  # recorded --from: no app to re-run
    assert "names no app" in capsys.readouterr().err
