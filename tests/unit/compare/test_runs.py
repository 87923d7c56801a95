"""compare_runs: every "identical" next to a negative control that plants one precise difference."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fake_runs as fr
from twinrun.compare.judge import weights as weights_compare
from twinrun.compare.judge.kinds import Context
from twinrun.compare.judge.weights import max_ulp_distance, ulp_keys
from twinrun.compare.read.run_reader import UnusableRunError, open_run, path_mask
from twinrun.compare.read.weights_reader import TensorDictWeights
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, NOT_COMPARED, ONLY_IN_A, Report, WeightsSection
from twinrun.compare.runs import compare_final_weights, compare_runs
from twinrun.record import runs


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Path]:
    return fr.make_twins(tmp_path)


def only_difference(report: Report) -> list[str]:
    """Names of the sections that differ (and count toward the verdict), "files" (all of them) aside."""
    return [
        n for n, s in report.sections.items() if s.affects_verdict and s.status == DIFFERENT and n != "files"
    ]


def test_twins_are_identical(twins: tuple[Path, Path]) -> None:
    a, b = twins
    report = compare_runs(a, b)
    assert report.verdict == IDENTICAL and report.exit_code == 0
    assert all(s.status == IDENTICAL for s in report.sections.values()), report.to_dict()
    assert report.divergence is None
    # Controls: the twins really differ in what the comparer must ignore.
    assert (a / "vae_mnist.log").read_bytes() != (b / "vae_mnist.log").read_bytes()
    assert (a / runs.METRICS).read_bytes() != (b / runs.METRICS).read_bytes()  # epoch_time
    assert (a / ".hydra/overrides.yaml").read_bytes() != (b / ".hydra/overrides.yaml").read_bytes()
    assert (a / "images/samples.png").read_bytes() != (b / "images/samples.png").read_bytes()


# --- weights -------------------------------------------------------------------------------------------


def test_one_flipped_bit_is_one_element_one_ulp(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.flip_bit(b, "encoder.weight", index=5)
    report = compare_runs(a, b)
    assert report.exit_code == 1 and only_difference(report) == ["weights"]
    (diff,) = report.sections["weights"].differing
    assert (diff.name, diff.differing, diff.max_ulp, diff.first_index) == ("encoder.weight", 1, 1, 5)
    assert 0 < diff.max_abs_diff < 1e-6
    assert "encoder.weight (1 of 12 elements" in report.sections["weights"].summary


def test_signed_zero_differs(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.set_tensor(a, "encoder.bias", lambda t: t.index_fill_(0, torch.tensor([1]), 0.0))
    fr.set_tensor(b, "encoder.bias", lambda t: t.index_fill_(0, torch.tensor([1]), -0.0))
    (diff,) = compare_runs(a, b).sections["weights"].differing
    assert (diff.differing, diff.max_abs_diff, diff.max_ulp) == (1, 0.0, 1)


def test_nan_payloads_differ(twins: tuple[Path, Path]) -> None:
    a, b = twins
    quiet, payload = struct.unpack("<f", struct.pack("<I", 0x7FC00000))[0], 0x7FC00001

    def nan_with(bits: int):
        return lambda t: t.reshape(-1).view(torch.int32).index_fill_(0, torch.tensor([2]), bits).view(t.dtype)

    fr.set_tensor(a, "encoder.bias", nan_with(0x7FC00000))
    fr.set_tensor(b, "encoder.bias", nan_with(payload))
    assert math.isnan(quiet)
    (diff,) = compare_runs(a, b).sections["weights"].differing
    assert (diff.differing, diff.nan_mismatches, diff.max_abs_diff, diff.max_ulp) == (1, 0, 0.0, 1)


def test_nan_against_a_number(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.set_tensor(b, "decoder.weight", lambda t: t.index_fill_(1, torch.tensor([0]), float("nan")))
    (diff,) = compare_runs(a, b).sections["weights"].differing
    assert (diff.differing, diff.nan_mismatches) == (3, 3)


@pytest.mark.parametrize("name", ["norm.running_mean", "decoder.weight"])
def test_half_and_double_ulps(twins: tuple[Path, Path], name: str) -> None:
    a, b = twins
    fr.flip_bit(b, name, index=1, bit=1)
    (diff,) = compare_runs(a, b).sections["weights"].differing
    assert (diff.name, diff.differing, diff.max_ulp) == (name, 1, 2)


def test_integer_and_bool_tensors(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.set_tensor(b, "norm.num_batches_tracked", lambda t: t + 3)
    fr.set_tensor(b, "mask", lambda t: ~t)
    diffs = {d.name: d for d in compare_runs(a, b).sections["weights"].differing}
    steps, mask = diffs["norm.num_batches_tracked"], diffs["mask"]
    assert (steps.differing, steps.max_abs_diff, steps.max_ulp) == (1, 3.0, None)
    assert (mask.differing, mask.max_ulp, mask.first_a, mask.first_b) == (3, None, True, False)


def test_bfloat16_and_complex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_compare, "STATS_ELEMENTS", 4)  # several statistics passes per tensor
    state = {"bf": torch.linspace(-2, 2, 8).to(torch.bfloat16), "cx": torch.ones(3, dtype=torch.complex64)}
    a, b = fr.make_run(tmp_path / "a", state_dict=state), fr.make_run(tmp_path / "b", state_dict=state)
    fr.flip_bit(b, "bf", index=6)
    fr.set_tensor(b, "cx", lambda t: t * 1j)
    diffs = {d.name: d for d in compare_runs(a, b).sections["weights"].differing}
    bf, cx = diffs["bf"], diffs["cx"]
    assert (bf.differing, bf.unit, bf.max_ulp, bf.first_index) == (1, "elements", 1, 6)
    assert bf.max_abs_diff == 2**-7  # one bfloat16 ULP in [1, 2)
    assert cx.unit == "bytes" and cx.differing > 0 and cx.max_ulp is None


def test_ulp_keys_follow_total_order() -> None:
    values = torch.tensor([-math.inf, -1.0, -1e-45, -0.0, 0.0, 1e-45, 1.0, math.inf])
    keys = ulp_keys(values.view(torch.int32).numpy())
    assert (keys[1:] > keys[:-1]).all()
    assert int(keys[4] - keys[3]) == 1 and int(keys[5] - keys[4]) == 1


def test_float64_ulp_distance_is_exact_beyond_int64() -> None:
    ends = torch.tensor([math.inf, -math.inf], dtype=torch.float64).view(torch.int64).numpy()
    assert max_ulp_distance(ends[:1], ends[1:]) == 2 * 0x7FF0000000000000 + 1


def test_chunked_statistics_match_whole_tensor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = torch.linspace(-1, 1, 1000)
    a = fr.make_run(tmp_path / "a", state_dict={"w": big})
    b = fr.make_run(tmp_path / "b", state_dict={"w": big})
    fr.flip_bit(b, "w", index=3, bit=2)
    fr.flip_bit(b, "w", index=700, bit=4)
    fr.flip_bit(b, "w", index=999, bit=0)
    monkeypatch.setattr(weights_compare, "CHUNK_BYTES", 256)  # 64 floats a chunk
    monkeypatch.setattr(weights_compare, "STATS_ELEMENTS", 16)
    (diff,) = compare_runs(a, b).sections["weights"].differing
    assert (diff.differing, diff.first_index, diff.max_ulp) == (3, 3, 16)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(width=32, allow_nan=True), min_size=1, max_size=40),
    flips=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 31)), max_size=6),
)
def test_statistics_match_a_brute_force_reference(values: list[float], flips: list[tuple[int, int]]) -> None:
    a = torch.tensor(values, dtype=torch.float32)
    bits = a.view(torch.int32).clone()
    for index, bit in flips:
        if index < len(values):
            bits[index] ^= (1 << bit) if bit < 31 else -(2**31)
    b = bits.view(torch.float32)

    def key(x: int) -> int:
        u = x & 0xFFFFFFFF
        return u if u < 2**31 else -(u & 0x7FFFFFFF) - 1

    pairs = [(x, y) for x, y in zip(a.view(torch.int32).tolist(), bits.tolist(), strict=True) if x != y]
    sources = (TensorDictWeights({"w": a}, "a"), TensorDictWeights({"w": b}, "b"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(weights_compare, "CHUNK_BYTES", 16)
        mp.setattr(weights_compare, "STATS_ELEMENTS", 3)
        sec = weights_compare.compare_weights(*sources)
    if not pairs:
        assert sec.status == IDENTICAL and sec.differing == []
        return
    (diff,) = sec.differing
    assert diff.differing == len(pairs)
    assert diff.max_ulp == max(abs(key(x) - key(y)) for x, y in pairs)
    one_nan = [(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True) if math.isnan(x) != math.isnan(y)]
    assert diff.nan_mismatches == len(one_nan)


def test_tolerance_is_reported_beside_bitwise_verdict(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.flip_bit(b, "encoder.weight", index=0)
    close = compare_runs(a, b, atol=1e-6)
    assert close.exit_code == 1  # "identical" is always bitwise
    assert (
        close.sections["weights"].close is True
        and "all within atol=1e-06" in close.sections["weights"].summary
    )
    far = compare_runs(a, b, atol=0.0, rtol=1e-12)
    assert far.sections["weights"].close is False and far.sections["weights"].differing[0].close is False
    assert compare_runs(a, b).sections["weights"].close is None  # no tolerance asked


def test_negative_tolerance_is_refused(twins: tuple[Path, Path]) -> None:
    with pytest.raises(UnusableRunError, match="--atol must be a number >= 0"):
        compare_runs(*twins, atol=-1.0)


def test_different_architectures(twins: tuple[Path, Path]) -> None:
    a, b = twins
    state = fr.tiny_state_dict()
    state.pop("mask")
    state["extra.bias"] = torch.zeros(2)
    state["encoder.weight"] = torch.zeros(4, 5)
    runs.write_weights(b, state)
    sec = compare_runs(a, b).sections["weights"]
    assert sec.status == DIFFERENT and sec.architecture_differs
    assert sec.only_in_a == ["mask"] and sec.only_in_b == ["extra.bias"]
    assert [(m.name, m.a, m.b) for m in sec.shape_mismatches] == [("encoder.weight", [4, 3], [4, 5])]
    assert sec.summary.startswith("different architectures: only in RUN_A: mask; only in RUN_B: extra.bias")


def test_dtype_mismatch(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.set_tensor(b, "encoder.bias", lambda t: t.to(torch.float64))
    sec = compare_runs(a, b).sections["weights"]
    assert [(m.name, m.a, m.b) for m in sec.dtype_mismatches] == [("encoder.bias", "float32", "float64")]


def test_stale_manifest_is_noted_not_trusted(twins: tuple[Path, Path]) -> None:
    a, b = twins
    manifest = (a / runs.MANIFEST).read_text()
    fr.flip_bit(b, "encoder.weight")
    (b / runs.MANIFEST).write_text(manifest)  # claims the old bytes
    sec = compare_runs(a, b).sections["weights"]
    assert sec.status == DIFFERENT and any("manifest is stale" in n for n in sec.notes)


# --- legacy --------------------------------------------------------------------------------------------


def test_legacy_runs_compare_with_each_other_and_with_safetensors(
    tmp_path: Path, twins: tuple[Path, Path]
) -> None:
    old_a, old_b = fr.make_legacy_run(tmp_path / "old_a"), fr.make_legacy_run(tmp_path / "old_b")
    assert compare_runs(old_a, old_b).exit_code == 0
    assert compare_runs(old_a, twins[0]).sections["weights"].status == IDENTICAL
    changed = fr.tiny_state_dict()
    changed["encoder.bias"][0] += 1
    fr.make_legacy_run(old_b, state_dict=changed)
    assert compare_runs(old_a, old_b).sections["weights"].differing[0].name == "encoder.bias"


def test_legacy_pickled_module_needs_no_trust(tmp_path: Path) -> None:
    a = fr.make_legacy_run(tmp_path / "a", module=True)
    b = fr.make_legacy_run(tmp_path / "b", module=True)
    assert compare_runs(a, b).exit_code == 0  # read without running the pickle
    assert compare_runs(a, b, trust_pickle=True).exit_code == 0
    torch.manual_seed(1)  # negative control: another initialisation of the same module differs
    torch.save(fr.TinyNet(), b / "trained_model.pt")
    report = compare_runs(a, b)
    assert report.exit_code == 1 and report.sections["weights"].status == DIFFERENT


# --- unusable input -----------------------------------------------------------------------------------


def test_same_directory_is_refused(twins: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = twins
    with pytest.raises(UnusableRunError, match=r"^RUN_A and RUN_B are the same directory; compare two runs$"):
        compare_runs(a, a)
    os.symlink(a, tmp_path / "alias")
    with pytest.raises(UnusableRunError, match="same directory"):
        compare_runs(a, tmp_path / "alias")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / runs.WEIGHTS).write_bytes(b""), "is empty"),
        (
            lambda r: (r / runs.WEIGHTS).write_bytes((r / runs.WEIGHTS).read_bytes()[:-1]),
            "not a valid safetensors",
        ),
        (
            lambda r: (r / runs.RESOLVED_CONFIG).write_text("a: [1\n"),
            "resolved_config.yaml line 2: malformed YAML",
        ),
        (lambda r: (r / runs.METRICS).write_text('{"epoch": 1}\n{"epoch": \n'), "metrics.jsonl line 2"),
        (lambda r: (r / runs.TRACE).write_text("nope\n"), "trace.jsonl line 1: malformed JSON"),
        (lambda r: (r / runs.ENV).write_text("[]"), "env.json must hold a JSON object"),
    ],
    ids=["empty-weights", "truncated", "bad-yaml", "bad-metrics", "bad-trace", "bad-env"],
)
def test_unusable_input(twins: tuple[Path, Path], damage, message: str) -> None:
    a, b = twins
    damage(b)
    with pytest.raises(UnusableRunError, match=message):
        compare_runs(a, b)


def test_missing_directory(twins: tuple[Path, Path]) -> None:
    with pytest.raises(UnusableRunError, match="does not exist"):
        compare_runs(twins[0], twins[0].parent / "missing")


# --- config, logs, metrics, environment --------------------------------------------------------------


def test_config_key_change(twins: tuple[Path, Path]) -> None:
    a, b = twins
    config = fr.default_config()
    config["optimizer"]["lr"] = 0.01
    config["training"]["extra"] = True
    del config["model"]["latent"]
    runs.write_resolved_config(b, config)
    sec = compare_runs(a, b).sections["config"]
    assert [(m.name, m.a, m.b) for m in sec.changed] == [("optimizer.lr", 0.001, 0.01)]
    assert sec.only_in_a == {"model.latent": 2} and sec.only_in_b == {"training.extra": True}
    assert sec.summary.startswith("optimizer.lr: 0.001 -> 0.01")


def test_config_value_type_matters(twins: tuple[Path, Path]) -> None:
    a, b = twins
    config = fr.default_config()
    config["training"]["epochs"] = 2.0
    runs.write_resolved_config(b, config)
    assert compare_runs(a, b).sections["config"].changed[0].name == "training.epochs"


def test_overrides_differ_beyond_volatile_keys(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (b / ".hydra/overrides.yaml").write_text("- seed=0\n- optimizer.lr=0.001\n- hydra.run.dir=/else\n")
    sec = compare_runs(a, b).sections["config"]
    assert sec.status == DIFFERENT and sec.summary == "overrides differ"
    assert sec.overrides_b == ["optimizer.lr=0.001", "seed=0"]


def test_foreign_runs_compare_their_hydra_configs(twins: tuple[Path, Path]) -> None:
    a, b = twins
    for run in twins:
        (run / runs.RESOLVED_CONFIG).unlink()
    assert compare_runs(a, b).sections["config"].status == IDENTICAL  # data.root differs: volatile
    (b / ".hydra/config.yaml").write_text(
        (b / ".hydra/config.yaml").read_text().replace("lr: 0.001", "lr: 0.002")
    )
    sec = compare_runs(a, b).sections["config"]
    assert sec.source_a == ".hydra/config.yaml" and sec.changed[0].name == "optimizer.lr"


def test_log_difference_names_line_and_both_sides(twins: tuple[Path, Path]) -> None:
    a, b = twins
    log = b / "vae_mnist.log"
    log.write_text(log.read_text().replace("test_loss=95.0000", "test_loss=95.0001"))
    sec = compare_runs(a, b).sections["logs"]
    first = sec.files[0].first
    assert sec.status == DIFFERENT and first.line == 5
    assert first.a.endswith("test_loss=95.0000 (<duration>)") and first.b.endswith(
        "test_loss=95.0001 (<duration>)"
    )
    assert sec.summary == "vae_mnist.log line 5 differs (1 line differs)"


def test_log_extra_line(twins: tuple[Path, Path]) -> None:
    a, b = twins
    with (b / "vae_mnist.log").open("a") as f:
        f.write("one more line\n")
    first = compare_runs(a, b).sections["logs"].files[0].first
    assert (first.line, first.a, first.b) == (8, None, "one more line")


def test_several_logs_are_matched_by_name(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (a / "extra.log").write_text("x\n")
    (b / "extra.log").write_text("y\n")
    (b / "only_b.log").write_text("z\n")
    sec = compare_runs(a, b).sections["logs"]
    assert [f.name_a for f in sec.files] == ["extra.log", "vae_mnist.log"] and sec.only_in_b == ["only_b.log"]
    assert sec.status == DIFFERENT and sec.files[0].differing_lines == 1


def test_metrics_difference(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_jsonl(b, runs.METRICS, lambda rows: rows[1].update(test_loss=runs.exact(95.5)))
    sec = compare_runs(a, b).sections["metrics"]
    assert (sec.first.row, sec.first.epoch, sec.first.step, sec.differing_rows) == (2, 2, 6, 1)
    (value,) = sec.first.keys
    assert (value.key, value.a_decimal, value.b_decimal) == ("test_loss", 95.0625, 95.5)


def test_a_key_only_one_run_has_differs_even_when_the_other_value_is_null(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_jsonl(a, runs.METRICS, lambda rows: rows[0].update(val_loss=None))
    fr.edit_json(b, runs.ENV, lambda env: env.pop("cuda"))  # null in RUN_A's env.json
    report = compare_runs(a, b)
    (value,) = report.sections["metrics"].first.keys
    assert (value.key, value.a, value.b) == ("val_loss", None, "(absent)") and report.exit_code == 1
    env = report.sections["environment"]
    assert [(m.name, m.a, m.b) for m in env.differing] == [("cuda", None, "(absent)")]
    fr.edit_jsonl(b, runs.METRICS, lambda rows: rows[0].update(val_loss=None))  # negative control
    fr.edit_json(b, runs.ENV, lambda env: env.update(cuda=None))
    assert compare_runs(a, b).exit_code == 0


def test_json_report_writes_values_json_has_no_type_for(twins: tuple[Path, Path]) -> None:
    import datetime

    a, b = twins
    for run, day in ((a, 1), (b, 2)):
        runs.write_resolved_config(run, {**fr.default_config(), "started": datetime.date(2024, 1, day)})
    tree = json.loads(json.dumps(compare_runs(a, b).to_dict()))  # strict JSON: no TypeError
    assert tree["sections"]["config"]["changed"][0]["a"] == '"datetime.date(2024, 1, 1)"'


def test_metrics_length(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_jsonl(b, runs.METRICS, lambda rows: rows.pop())
    sec = compare_runs(a, b).sections["metrics"]
    assert sec.status == DIFFERENT and sec.first is None and "RUN_A has 2 rows, RUN_B 1" in sec.summary


@pytest.mark.parametrize(
    "name", [*runs.CONTRACT_FILES, "vae_mnist.log", "images/samples.png", ".hydra/hydra.yaml"]
)
def test_a_file_only_one_run_has_is_a_difference(twins: tuple[Path, Path], name: str) -> None:
    a, b = twins
    assert compare_runs(a, b).exit_code == 0  # negative control
    (b / name).unlink()
    report = compare_runs(a, b)
    assert report.exit_code == 1, name
    (entry,) = [e for e in report.sections["files"].files if e.path == name]
    assert (entry.verdict, entry.kind != "") == (ONLY_IN_A, True)
    assert f"1 only in RUN_A ({name})" in report.sections["files"].summary


def test_a_section_only_one_run_has_is_not_compared_but_the_file_decides(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (b / runs.METRICS).unlink()
    report = compare_runs(a, b)
    assert report.sections["metrics"].status == NOT_COMPARED and report.exit_code == 1
    assert report.sections["metrics"].summary == "only RUN_A has metrics.jsonl"
    assert report.sections["files"].status == DIFFERENT


def test_a_run_with_only_its_weights_differs_from_a_complete_one(tmp_path: Path) -> None:
    a = fr.make_run(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    runs.write_weights(b, fr.tiny_state_dict())
    report = compare_runs(a, b)
    assert report.sections["weights"].status == IDENTICAL and report.exit_code == 1
    only_a = {e.path for e in report.sections["files"].files if e.verdict == ONLY_IN_A}
    assert {runs.METRICS, runs.TRACE, runs.ENV, runs.RESOLVED_CONFIG, "vae_mnist.log"} <= only_a


def test_environment_never_decides_but_says_so(twins: tuple[Path, Path]) -> None:
    a, b = twins
    runs.write_json(b / runs.ENV, fr.environment(python="3.12.1"))
    env = compare_runs(a, b).sections["environment"]
    assert env.bit_identity_expected is True and env.status == DIFFERENT
    runs.write_json(b / runs.ENV, fr.environment(torch="2.13.0", threads={"intra_op": 4, "inter_op": 2}))
    report = compare_runs(a, b)
    env = report.sections["environment"]
    assert report.exit_code == 0 and env.bit_identity_expected is False
    assert sorted(env.decisive) == ["threads.intra_op", "torch"]
    assert env.summary.startswith("bit-identity not expected: ") and "torch" in env.summary


# --- trace and divergence ----------------------------------------------------------------------------


def test_divergence_by_data_order(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows[2].update(batch="feedfacefeedface"))
    div = compare_runs(a, b).divergence
    assert (div.step, div.epoch, div.cause, div.rng_streams) == (3, 1, "data order", [])


def test_divergence_by_rng_stream(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows[4]["rng"].update(torch="0", cuda="1"))
    div = compare_runs(a, b).divergence
    assert (div.step, div.cause, div.rng_streams) == (5, "rng stream", ["torch", "cuda"])


def test_divergence_by_computation_names_first_parameter(twins: tuple[Path, Path]) -> None:
    a, b = twins
    for run, changed in ((a, {}), (b, {"encoder.bias": "0", "decoder.weight": "0"})):
        rows = fr.trace_rows()
        if changed:
            rows[2]["loss"] = runs.exact(33.4)  # step 3: parameters not traced there
        for row in rows:
            if "params" in row:  # the trace's own key order (not sorted): model order
                row["params"] = {
                    k: row["params"][k] for k in ("encoder.weight", "encoder.bias", "decoder.weight")
                }
        rows[3]["params"].update(changed)  # step 4: the first traced step after it
        (run / runs.TRACE).write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = compare_runs(a, b)
    div = report.divergence
    assert (div.step, div.cause, div.parameter, div.parameter_step) == (3, "computation", "encoder.bias", 4)
    assert "loss differs" in div.detail and div.rng_streams == []
    assert report.sections["trace"].summary == "diverges at step 3 (epoch 1): computation"


def test_divergence_by_configuration(twins: tuple[Path, Path]) -> None:
    a, b = twins
    config = fr.default_config()
    config["optimizer"]["lr"] = 0.5
    runs.write_resolved_config(b, config)
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows[0].update(loss=runs.exact(1.5)))
    div = compare_runs(a, b).divergence
    assert (div.step, div.cause) == (1, "configuration") and "optimizer.lr" in div.detail


def test_shorter_trace_diverges_by_length(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows.pop())
    div = compare_runs(a, b).divergence
    assert (div.step, div.epoch, div.cause) == (6, 2, "length")
    assert "RUN_B's trace ends after step 5" in div.detail


@pytest.mark.parametrize("bad_row", [[1, 2], {"step": 1, "rng": [1]}, {"step": 1, "params": "x"}])
def test_an_odd_trace_row_is_unusable_input(twins: tuple[Path, Path], bad_row) -> None:
    a, b = twins
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows.__setitem__(1, bad_row))
    unusable = r"run_b/trace.jsonl line 2(: expected a JSON object| is not a trace row)"
    with pytest.raises(UnusableRunError, match=unusable):
        compare_runs(a, b)


def test_one_trace_missing_gives_no_divergence(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (a / runs.TRACE).unlink()
    report = compare_runs(a, b)
    assert report.divergence is None and report.sections["trace"].status == NOT_COMPARED


def test_a_trace_format_in_env_json_never_hides_a_changed_trace(twins: tuple[Path, Path]) -> None:
    """Rule 5: the environment is context; a trace_format it names cannot switch the trace off."""
    a, b = twins
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows[0].update(batch="0123456789abcdef"))  # other digests
    assert compare_runs(a, b).divergence is not None  # negative control: one format, compared
    fr.edit_json(a, runs.ENV, lambda env: env.update(trace_format="twinrun-trace/2"))
    report = compare_runs(a, b)  # RUN_B's env.json has no trace_format: an older run, format 1
    trace = report.sections["trace"]
    assert report.divergence is not None and trace.status == DIFFERENT and report.exit_code == 1
    assert "twinrun-trace/2 vs twinrun-trace/1" in trace.summary


def test_a_trace_format_in_env_json_alone_does_not_make_equal_traces_differ(
    twins: tuple[Path, Path],
) -> None:
    a, b = twins
    fr.edit_json(b, runs.ENV, lambda env: env.update(trace_format="twinrun-trace/2"))
    trace = compare_runs(a, b).sections["trace"]
    assert trace.status == IDENTICAL and "format" not in trace.summary


def test_json_report_has_the_contract_keys(twins: tuple[Path, Path]) -> None:
    a, b = twins
    tree = compare_runs(a, b).to_dict()
    assert {"verdict", "exit_code", "sections", "divergence"} <= set(tree)
    assert list(tree["sections"]) == [
        "files",
        "weights",
        "config",
        "logs",
        "metrics",
        "images",
        "environment",
        "trace",
    ]
    assert tree["divergence"] is None and tree["hints"] == []
    files = tree["sections"]["files"]
    assert {"path", "kind", "verdict", "detail", "decisive", "masked"} == set(files["files"][0])
    assert {e["path"]: e["kind"] for e in files["files"]}["images/samples.png"] == "image"
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows[0].update(batch="0"))
    div = compare_runs(a, b).to_dict()["divergence"]
    assert set(div) >= {"step", "epoch", "cause", "parameter", "rng_streams", "detail"}


# --- the comparer's own rules (runs.py), one behaviour a test --------------------------------------------


@pytest.mark.parametrize(
    ("atol", "rtol", "flag", "shown"),
    [
        (float("nan"), None, "--atol", "nan"),  # NaN is not < 0, and must be refused too
        (None, float("nan"), "--rtol", "nan"),
        (None, -1e-9, "--rtol", "-1e-09"),
        (0.5, -2.0, "--rtol", "-2.0"),
        (-0.5, 0.5, "--atol", "-0.5"),
    ],
)
def test_tolerances_must_be_numbers_at_least_zero(
    twins: tuple[Path, Path], atol: float | None, rtol: float | None, flag: str, shown: str
) -> None:
    message = f"{flag} must be a number >= 0, got {shown}; give a non-negative tolerance"
    with pytest.raises(UnusableRunError, match=f"^{message}$".replace("+", r"\+").replace(".", r"\.")):
        compare_runs(*twins, atol=atol, rtol=rtol)


def test_zero_tolerances_are_accepted_and_reach_the_weights(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.flip_bit(b, "encoder.weight", index=0)
    sec = compare_runs(a, b, atol=0.0, rtol=0.0).sections["weights"]
    assert (sec.atol, sec.rtol, sec.close) == (0.0, 0.0, False)
    sec = compare_runs(a, b, atol=0.0, rtol=0.5).sections["weights"]
    assert (sec.atol, sec.rtol, sec.close) == (0.0, 0.5, True)


def test_a_determinism_difference_voids_bit_identity(twins: tuple[Path, Path]) -> None:
    a, b = twins
    flags = {"deterministic_algorithms": False, "cudnn_benchmark": False}
    runs.write_json(b / runs.ENV, fr.environment(determinism=flags))
    report = compare_runs(a, b)
    env = report.sections["environment"]
    assert report.exit_code == 0 and env.status == DIFFERENT
    assert (env.decisive, env.bit_identity_expected) == (["determinism.deterministic_algorithms"], False)
    (entry,) = [e for e in report.sections["files"].files if e.path == runs.ENV]
    assert (entry.verdict, entry.decisive, entry.differs) == (DIFFERENT, False, False)


def write_config(run: Path, **changes: object) -> None:
    runs.write_resolved_config(run, {**fr.default_config(), **changes})


def test_config_summary_names_two_changes_and_counts_the_rest(twins: tuple[Path, Path]) -> None:
    a, b = twins
    write_config(b, device="cuda", seed=1, model={"hidden": 8, "latent": 2}, extra_b=1)
    write_config(a, only_a1=1, only_a2=2)
    sec = compare_runs(a, b).sections["config"]
    assert [m.name for m in sec.changed] == ["device", "model.hidden", "seed"]
    assert sec.keys == 14  # RUN_A's
    assert sec.summary == (
        "device: cpu -> cuda; model.hidden: 16 -> 8; +1 more changed; "
        "2 keys only in RUN_A; 1 keys only in RUN_B"
    )


def test_identical_config_summary_counts_keys_and_says_overrides(twins: tuple[Path, Path]) -> None:
    a, b = twins
    sec = compare_runs(a, b).sections["config"]
    assert (sec.status, sec.summary) == (IDENTICAL, "12 keys identical, overrides identical")
    assert sec.overrides_a == sec.overrides_b == ["seed=0"]
    assert (sec.source_a, sec.source_b) == (runs.RESOLVED_CONFIG, runs.RESOLVED_CONFIG)
    assert (sec.unresolvable_a, sec.unresolvable_b) == ([], [])
    (a / ".hydra/overrides.yaml").unlink()
    sec = compare_runs(a, b).sections["config"]
    assert (sec.status, sec.summary, sec.overrides_a, sec.overrides_b) == (
        IDENTICAL,
        "12 keys identical",
        None,
        None,
    )


def test_a_config_only_one_run_has_is_not_compared(tmp_path: Path) -> None:
    a, b = fr.make_twins(tmp_path, hydra=False)
    (b / runs.RESOLVED_CONFIG).unlink()
    sec = compare_runs(a, b).sections["config"]
    assert (sec.status, sec.summary) == (NOT_COMPARED, "only RUN_A has a config")
    (a / runs.RESOLVED_CONFIG).unlink()
    assert compare_runs(a, b).sections["config"].summary == "neither run has a config"
    runs.write_resolved_config(b, fr.default_config())
    assert compare_runs(a, b).sections["config"].summary == "only RUN_B has a config"


def test_the_runs_own_paths_are_masked_in_configs_and_overrides(tmp_path: Path) -> None:
    a, b = fr.make_twins(tmp_path)
    for run in (a, b):
        write_config(run, out=f"{run}/samples", copy=str(run))
        (run / ".hydra/overrides.yaml").write_text(f"- seed=0\n- +out={run}/samples\n")
    sec = compare_runs(a, b).sections["config"]
    assert (sec.status, sec.changed) == (IDENTICAL, [])
    assert sec.overrides_a == sec.overrides_b and len(sec.overrides_a) == 2
    assert sec.overrides_a[0] != f"+out={a}/samples"  # masked, not kept as written
    write_config(b, out=f"{tmp_path}/elsewhere", copy=str(b))  # negative control: another folder
    (b / ".hydra/overrides.yaml").write_text(f"- seed=0\n- +out={tmp_path}/elsewhere\n")
    sec = compare_runs(a, b).sections["config"]
    assert [m.name for m in sec.changed] == ["out"] and sec.summary.endswith("; overrides differ")


def test_a_divergence_names_the_differing_config_keys_or_overrides(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows[1].update(loss=runs.exact(1.5)))
    (b / ".hydra/overrides.yaml").write_text("- seed=0\n- training.epochs=2\n")
    div = compare_runs(a, b).divergence
    assert (div.step, div.cause) == (2, "configuration")
    assert div.detail.endswith("; the configurations differ (overrides)")
    write_config(b, seed=3)
    div = compare_runs(a, b).divergence
    assert div.detail.endswith("; the configurations differ (seed)")
    write_config(b)
    (b / ".hydra/overrides.yaml").write_text("- seed=0\n")
    assert compare_runs(a, b).divergence.cause == "computation"  # negative control


def test_manifests_that_differ_while_the_weights_agree_are_stale(twins: tuple[Path, Path]) -> None:
    a, b = twins
    assert compare_runs(a, b).sections["weights"].notes == []  # agreeing manifests: no note
    fr.edit_json(b, runs.MANIFEST, lambda m: m.update(digest="0" * 64))
    sec = compare_runs(a, b).sections["weights"]
    assert sec.status == IDENTICAL
    assert sec.notes == [
        "the manifest.json digests differ but the weights are identical: a manifest is stale"
    ]


def test_manifests_that_agree_while_the_weights_differ_are_stale(twins: tuple[Path, Path]) -> None:
    a, b = twins
    manifest = (a / runs.MANIFEST).read_text()
    fr.flip_bit(b, "encoder.weight")
    assert compare_runs(a, b).sections["weights"].notes == []  # negative control: both manifests true
    (b / runs.MANIFEST).write_text(manifest)
    sec = compare_runs(a, b).sections["weights"]
    assert sec.notes == ["the manifest.json digests agree but the weights differ: a manifest is stale"]


def final_weights(a: Path, b: Path) -> WeightsSection:
    ra, rb = open_run(a), open_run(b)
    return compare_final_weights(ra, rb, Context(ra, rb, path_mask(ra, rb), None, None, False))


@pytest.mark.parametrize("manifest", ["[]", "{", '"digest"'])
def test_an_unreadable_manifest_is_noted_and_ignored(twins: tuple[Path, Path], manifest: str) -> None:
    a, b = twins
    assert final_weights(a, b).notes == []  # negative control
    (b / runs.MANIFEST).write_text(manifest)
    sec = final_weights(a, b)
    assert sec.status == IDENTICAL
    assert sec.notes == [
        "a manifest.json is unreadable; it was ignored (the verdict reads the weights themselves)"
    ]
    (a / runs.MANIFEST).unlink()
    assert final_weights(a, b).notes == []  # one manifest: nothing to compare
    assert final_weights(b, a).notes == []


def test_the_digest_of_one_manifest_missing_is_no_note(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_json(a, runs.MANIFEST, lambda m: m.update(digest="x"))
    fr.edit_json(b, runs.MANIFEST, lambda m: m.update(digest="y"))
    assert compare_runs(a, b).sections["weights"].notes != []  # negative control: both digests, differing
    for run, digest in ((a, "x"), (b, "y")):
        fr.edit_json(run, runs.MANIFEST, lambda m: m.pop("digest"))
        assert compare_runs(a, b).sections["weights"].notes == []
        fr.edit_json(run, runs.MANIFEST, lambda m, d=digest: m.update(digest=d))


def test_final_weights_missing_on_one_side_or_both(tmp_path: Path) -> None:
    a, b = fr.make_twins(tmp_path)
    for name in (runs.WEIGHTS, runs.MANIFEST):
        (b / name).unlink()
    sec = compare_runs(a, b).sections["weights"]
    assert (sec.status, sec.summary) == (
        NOT_COMPARED,
        "only RUN_A has weights.safetensors or trained_model.pt",
    )
    for name in (runs.WEIGHTS, runs.MANIFEST):
        (a / name).unlink()
    report = compare_runs(a, b)
    assert report.sections["weights"].summary == (
        "neither run has weights.safetensors or trained_model.pt; "
        "the verdict rests on the files the runs left"
    )
    assert report.exit_code == 0
    fr.make_legacy_run(b)
    sec = compare_runs(a, b).sections["weights"]
    assert sec.summary == "only RUN_B has weights.safetensors or trained_model.pt"


def test_safetensors_weights_win_over_a_legacy_file(tmp_path: Path) -> None:
    a, b = fr.make_twins(tmp_path)
    changed = fr.tiny_state_dict()
    changed["encoder.bias"][0] += 1
    fr.make_legacy_run(b, state_dict=changed)  # a stale legacy file beside the weights
    fr.make_legacy_run(a)
    sec = compare_runs(a, b).sections["weights"]
    assert sec.source_a.endswith(runs.WEIGHTS) and sec.source_b.endswith(runs.WEIGHTS)
    assert sec.status == IDENTICAL


def test_a_trace_row_with_odd_rng_or_params_names_its_line(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_jsonl(a, runs.TRACE, lambda rows: rows[2].update(params=[1]))
    message = (
        f"{a}/trace.jsonl line 3 is not a trace row (its rng and params must be objects); "
        "regenerate it by re-running the training"
    )
    with pytest.raises(UnusableRunError) as caught:
        compare_runs(a, b)
    assert str(caught.value) == message


def test_trace_format_written_only_by_the_newer_run_is_the_first_format(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_json(a, runs.ENV, lambda env: env.update(trace_format="twinrun-trace/1"))
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows[0].update(batch="0"))
    report = compare_runs(a, b)
    assert report.sections["trace"].status == DIFFERENT and report.divergence.cause == "data order"
    fr.edit_json(b, runs.ENV, lambda env: env.update(trace_format="twinrun-trace/2"))
    report = compare_runs(a, b)
    trace = report.sections["trace"]
    assert trace.status == DIFFERENT and report.exit_code == 1
    assert "(env.json names different trace formats, twinrun-trace/1 vs twinrun-trace/2;" in trace.summary


def test_trace_only_in_one_run(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (b / runs.TRACE).unlink()
    trace = compare_runs(a, b).sections["trace"]
    assert (trace.status, trace.summary) == (NOT_COMPARED, "only RUN_A has trace.jsonl")
    (a / runs.TRACE).rename(b / runs.TRACE)
    trace = compare_runs(a, b).sections["trace"]
    assert (trace.status, trace.summary) == (NOT_COMPARED, "only RUN_B has trace.jsonl")


def test_ignore_patterns_from_the_caller_and_the_project(
    twins: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = twins
    (b / "notes.txt").write_text("b only\n")
    (b / "scratch.bin").write_bytes(b"\0")
    assert compare_runs(a, b).exit_code == 1  # negative control
    report = compare_runs(a, b, ignore=["*.txt", "*.bin"])
    files = report.sections["files"]
    assert report.exit_code == 0 and {"*.txt", "*.bin", "*.pyc"} <= set(files.ignore_patterns)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.twinrun]\nignore = ["*.txt"]\n')
    monkeypatch.chdir(project)
    assert compare_runs(a, b).exit_code == 1
    assert compare_runs(a, b, ignore=["scratch.*"]).exit_code == 0  # the project's and the caller's


def test_report_names_the_runs_as_given_and_orders_its_sections(tmp_path: Path) -> None:
    a, b = fr.make_twins(tmp_path)
    for run in (a, b):
        torch.save({"w": torch.ones(2)}, run / "extra.pt")
        (run / "table.csv").write_text("x,y\n1,2\n")
        (run / "blob.dat").write_bytes(b"abc")
    report = compare_runs(str(a), b)
    assert (report.run_a, report.run_b) == (str(a), str(b))
    assert list(report.sections) == [
        "files",
        "weights",
        "tensors",
        "config",
        "logs",
        "metrics",
        "tables",
        "images",
        "other",
        "environment",
        "trace",
    ]


def test_contract_files_take_their_sections_verdict(twins: tuple[Path, Path]) -> None:
    a, b = twins
    fr.edit_jsonl(b, runs.METRICS, lambda rows: rows[0].update(train_loss="0x1.0p+0"))
    report = compare_runs(a, b)
    entries = {e.path: e for e in report.sections["files"].files}
    metrics = report.sections["metrics"]
    assert (entries[runs.METRICS].verdict, entries[runs.METRICS].detail) == (DIFFERENT, metrics.summary)
    assert entries[runs.METRICS].decisive is True and entries[runs.METRICS].kind == "metrics"
    weights = report.sections["weights"]
    assert (entries[runs.WEIGHTS].verdict, entries[runs.WEIGHTS].detail) == (IDENTICAL, weights.summary)
    (entry,) = [e for e in report.sections["files"].files if e.path == "vae_mnist.log"]
    assert (entry.verdict, entry.kind) == (IDENTICAL, "log")


def test_a_file_only_run_b_has(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (b / "extra.txt").write_text("x\n")
    report = compare_runs(a, b)
    (entry,) = [e for e in report.sections["files"].files if e.path == "extra.txt"]
    assert (entry.verdict, entry.detail, entry.decisive) == ("only in RUN_B", "", True)
    assert report.exit_code == 1 and report.sections["files"].status == DIFFERENT


def test_hints_read_run_a_config_and_the_outcomes(twins: tuple[Path, Path]) -> None:
    a, b = twins
    for run in (a, b):
        (run / runs.TRACE).unlink()
    log = b / "vae_mnist.log"
    log.write_text(log.read_text().replace("test_loss=95.0000", "test_loss=95.0001"))
    hints = compare_runs(a, b).hints
    assert any(h.startswith("seed is 0: `if cfg.seed:` skips seeding") for h in hints), hints


def test_trust_pickle_reaches_the_final_weights(tmp_path: Path) -> None:
    import operator

    a, b = tmp_path / "a", tmp_path / "b"
    for run in (a, b):
        run.mkdir()
        torch.save({"w": torch.ones(2), "get": operator.attrgetter("real")}, run / "trained_model.pt")
    with pytest.raises(UnusableRunError, match=r"GLOBAL operator\.attrgetter"):
        compare_runs(a, b)
    report = compare_runs(a, b, trust_pickle=True)
    assert report.exit_code == 0 and report.sections["weights"].status == IDENTICAL


def test_two_config_changes_are_both_named(twins: tuple[Path, Path]) -> None:
    a, b = twins
    write_config(b, device="cuda", seed=1)
    sec = compare_runs(a, b).sections["config"]
    assert (sec.status, sec.summary) == (DIFFERENT, "device: cpu -> cuda; seed: 0 -> 1")


def test_a_file_compared_by_its_kind_decides_through_the_files_section(twins: tuple[Path, Path]) -> None:
    a, b = twins
    log = b / "vae_mnist.log"
    log.write_text(log.read_text().replace("test_loss=95.0000", "test_loss=95.0001"))
    report = compare_runs(a, b)
    (entry,) = [e for e in report.sections["files"].files if e.path == "vae_mnist.log"]
    assert (entry.verdict, entry.decisive, entry.differs) == (DIFFERENT, True, True)
    assert entry.detail == "line 5 differs (1 line differs)"
    files = report.sections["files"]
    assert (files.status, files.summary) == (
        DIFFERENT,
        "11 files: 10 identical, 1 different (vae_mnist.log), masked: 3 wall-clock fields, 2 paths "
        "(.hydra/hydra.yaml, .hydra/overrides.yaml, images/samples.png +1 more)",
    )
