"""A golden from a run directory: exact values, thinned long traces, digests of what the verdict compares."""

from __future__ import annotations

import json
import struct

from tests.helpers.fake_runs import make_run, make_twins, set_tensor
from twinrun.golden.check import check_golden
from twinrun.golden.layout import dumps
from twinrun.golden.record import exact_loss, golden_from_run, thin_trace


def test_twins_give_the_same_golden_and_a_changed_tensor_is_named(tmp_path) -> None:
    a, b = make_twins(tmp_path)  # equal but for times, durations, paths and PNG compression
    ga, gb = golden_from_run(a, "app", ["seed=0"]), golden_from_run(b)
    report = check_golden(ga, gb)
    assert report.passed, report
    assert "images/samples.png" in ga["artifacts"]
    assert not any(k.startswith(".hydra/") or k.endswith((".safetensors", ".jsonl")) for k in ga["artifacts"])
    assert ga["case"] == {"app": "app", "overrides": ["seed=0"]}
    name = next(iter(ga["weights"]["tensors"]))
    set_tensor(b, name, lambda t: t + 1)
    assert check_golden(ga, golden_from_run(b)).tensors == [f"{name}: bytes differ"]


def test_an_app_without_a_trace_still_gets_a_golden(tmp_path) -> None:
    run = make_run(tmp_path / "plain", trace=False)
    golden = golden_from_run(run)
    assert golden["trace"] is None and golden["metrics"]["kept"] and golden["artifacts"]


def test_losses_stay_exact() -> None:
    value = 1 / 3
    assert float.fromhex(exact_loss(value.hex())) == value
    assert exact_loss("0x1.8000000000000p+1") == "0x1.8p+1"
    assert exact_loss("0x1.0000000000000p+0") == "0x1p+0"


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def test_a_thousand_step_golden_is_about_100_kb() -> None:
    # A float32 loss (what training computes) as hex has 6 mantissa digits; float64 would add 7 more.
    params = {f"layer{i}.weight": f"{i:016x}" for i in range(12)}
    rows = [
        {
            "step": s,
            "epoch": 1 + s // 100,
            "batch": f"{s * 7919:016x}",
            "rng": {"python": "fdeaa6bfc01d6273", "numpy": "1b3216ba47141796", "torch": f"{s:016x}"},
            "loss": _float32(1000.0 / s).hex(),
            "params": params,
        }
        for s in range(1, 1001)
    ]
    trace = thin_trace(rows)
    size = len(dumps({"trace": trace}))
    assert size <= 110_000, size  # measured 106 KB: 1000 compact rows (96 KB) + 17 whole rows
    assert len(trace["rows"]) == 1000 and trace["full"][0] == rows[0] and trace["full"][-1] == rows[-1]
    assert all(
        float.fromhex(r["loss"]) == _float32(1000.0 / r["step"]) for r in trace["rows"]
    )  # never rounded
    assert json.loads(dumps({"trace": trace}))["trace"] == trace
