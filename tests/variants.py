"""The config variants the twin-run suite covers, derived from ``conf/`` (sorted, so every xdist
worker collects the same tests in the same order)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import hydra.utils
from hypothesis import settings

from twinrun.testing.compose import compose_config, group_options
from twinrun.trainers.apps import mnist_classifier, vae_mnist
from twinrun.trainers.objectives import ClassifierObjective, VAEObjective

# The device the suite trains on: cpu, or cuda under `nox -s repro-cuda` (which sets TWINRUN_DEVICE).
DEVICE = os.environ.get("TWINRUN_DEVICE", "cpu")
# Small enough for a twin check in about a second; batch sizes of the options still apply.
TEST_SIZE = (
    "data=synthetic",
    "data.train_samples=192",
    "data.test_samples=64",
    "training.epochs=2",
    f"device={DEVICE}",
)
VARIED_GROUPS = ("model", "training", "experiment")
# tests/repro trains with DataLoader workers unless a test says otherwise: a fault that only shows with
# workers (an unseeded worker or loader order) then fails every twin there, not just the worker tests.
REPRO_WORKERS = "training.num_workers=2"


@dataclass(frozen=True)
class App:
    name: str
    train: object
    model_type: type

    def compose(self, *overrides: str):
        return compose_config(self.name, [*TEST_SIZE, *overrides])


APPS = (
    App("mnist_classifier", mnist_classifier.train, ClassifierObjective.model_type),
    App("vae_mnist", vae_mnist.train, VAEObjective.model_type),
)
APPS_BY_NAME = {app.name: app for app in APPS}


def train_from_scrambled_rngs(app: App, cfg, run_dir) -> None:
    """``app.train(cfg, run_dir)`` from global RNGs seeded from OS entropy, as the plugin's twins start:
    a run that depends on the global state it was handed cannot match another run by luck. The caller's
    RNGs and determinism switches are restored afterwards."""
    from twinrun.testing.pytest_plugin import preserved_global_state, scramble_global_rngs

    with preserved_global_state():
        scramble_global_rngs()
        app.train(cfg, run_dir)


def _fits(app: App, group: str, option: str) -> bool:
    if group != "model":
        return True
    target = compose_config(app.name, [f"model={option}"]).model._target_
    return issubclass(hydra.utils.get_class(target), app.model_type)


def config_variants() -> list[tuple[str, str]]:
    """``(app name, "group=option")`` for every option of every varied group that the app can use (as its
    ``--help`` lists them) and that changes its config: the default config's twins are trained by
    ``test_dataloader_workers_give_identical_twins_and_the_in_process_result``."""
    from twinrun.config import config_dir
    from twinrun.trainers.apps.help import default_options, usable_options

    defaults = default_options(config_dir())
    return sorted(
        (app.name, f"{group}={option}")
        for app in APPS
        for group in VARIED_GROUPS
        for option in usable_options(app.name, group, group_options(group))
        if option != defaults.get(app.name, {}).get(group) and _fits(app, group, option)
    )


def gate_examples(count: int) -> settings:
    """At most ``count`` generated examples (beside the explicit ``@example``\\ s) under the ``dev`` and
    ``ci`` profiles, the PR gate; the ``deep`` profile (nightly) keeps its own, larger number."""
    current = settings().max_examples
    return settings(max_examples=count if current <= 4 else current)
