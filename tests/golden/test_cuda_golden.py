"""The CUDA golden (``nox -s repro-cuda``): a CUDA run of the VAE's golden case is recorded and a second
CUDA run must match it bit for bit; a planted one-ULP change must fail it at its step. Skipped with a
reason where no CUDA device is visible (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.golden.conftest import TRAINERS, golden
from tests.sensitivity.broken_trainers import perturb_one_ulp
from twinrun.golden.check import EXACT, check_golden
from twinrun.golden.record import golden_from_run
from twinrun.golden.report import render_text
from twinrun.testing.compose import compose_config


def _cuda_run(run_dir, data_root, hooks=None):
    overrides = [o for o in golden("vae_mnist")["case"]["overrides"] if not o.startswith("device=")]
    cfg = compose_config("vae_mnist", [*overrides, "device=cuda", f"data.root={data_root}"])
    TRAINERS["vae_mnist"](cfg, run_dir, **({"hooks": hooks} if hooks else {}))
    return run_dir


@pytest.mark.cuda
def test_cuda_golden_is_bit_exact_and_catches_a_planted_change(tmp_path, twinrun_data_root) -> None:
    cuda_golden = golden_from_run(_cuda_run(tmp_path / "record", twinrun_data_root))
    assert cuda_golden["environment"]["device"] == "cuda"
    again = check_golden(cuda_golden, golden_from_run(_cuda_run(tmp_path / "check", twinrun_data_root)))
    assert (again.mode, again.passed) == (EXACT, True), render_text(again)
    planted = _cuda_run(tmp_path / "planted", twinrun_data_root, perturb_one_ulp(3, "decoder_out.bias"))
    report = check_golden(cuda_golden, golden_from_run(planted))
    assert (report.divergence.step, report.divergence.cause) == (3, "computation")
