"""Suite-wide settings: hypothesis profiles, and isolation from the working directory.

Profiles: ``dev`` (default; fast enough for ``pytest -n auto``), ``deep`` (nightly: many examples),
and the built-in ``ci`` profile (loaded automatically when ``CI`` is set) extended, not replaced.
Pick one with ``HYPOTHESIS_PROFILE=deep`` or ``--hypothesis-profile=deep``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Training examples take a second or so and reuse shared fixtures (data root, tmp factories).
_TRAINING = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
settings.register_profile("dev", max_examples=4, **_TRAINING)
settings.register_profile("deep", max_examples=60, **_TRAINING)
settings.register_profile("ci", parent=settings.get_profile("ci"), max_examples=4, **_TRAINING)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, share the cores instead of oversubscribing them.

    Each worker would otherwise run torch with one thread per core, so ``-n auto`` on 2 cores ran 4
    compute threads and was slower than ``-n 0``. Twins are compared within one process (or between
    subprocesses that inherit the same setting), so the thread count never differs inside a check.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if os.environ.get("PYTEST_XDIST_WORKER") and workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ.setdefault("OMP_NUM_THREADS", threads)  # inherited by the CLI tests' subprocesses
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the working directory: each starts in a fresh empty directory."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _shared_data_root(twinrun_data_root, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every config's ``data.root`` defaults to the one root shared by all xdist workers."""
    monkeypatch.setenv("TWINRUN_DATA_ROOT", str(twinrun_data_root))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``cuda`` tests skip with a reason where no CUDA device is visible (``repro-cuda`` fails instead)."""
    if not any(item.get_closest_marker("cuda") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(
        reason="needs a CUDA device; none is visible (run `nox -s repro-cuda` on a GPU machine)"
    )
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)
