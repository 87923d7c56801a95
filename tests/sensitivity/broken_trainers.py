"""Deliberately broken trainers: each is the real VAE/classifier trainer with one classic
reproducibility bug put back in. The suite must flag every one of them."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import random
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import hydra.utils
import numpy as np
import torch

from twinrun.record.determinism import seed_everything
from twinrun.trainers import data as data_module
from twinrun.trainers.apps import mnist_classifier, vae_mnist
from twinrun.trainers.loop import Hooks, StepContext
from twinrun.trainers.models.vae import VAE

Train = Callable[..., object]


@contextlib.contextmanager
def _patched(target: str, replacement: object) -> Iterator[None]:
    with mock.patch(target, replacement):
        yield


def _with(train: Train, patch_target: str, replacement: object) -> Train:
    def broken(cfg, run_dir: Path, hooks: Hooks | None = None):
        with _patched(patch_target, replacement):
            return train(cfg, run_dir, hooks=hooks)

    return broken


def _with_hooks(train: Train, hooks: Hooks) -> Train:
    return lambda cfg, run_dir: train(cfg, run_dir, hooks=hooks)


# --- the sensitivity set -------------------------------------------------------------------------


def no_seed(train: Train) -> Train:
    """Never seeds the global RNGs: model initialisation and dropout/noise vary run to run."""
    return _with(train, "twinrun.trainers.loop.seed_everything", lambda seed: None)


def zero_seed_is_unset(train: Train) -> Train:
    """``if seed: seed_everything(seed)``: seed=0 silently means "no seed"."""
    return _with(
        train, "twinrun.trainers.loop.seed_everything", lambda seed: seed_everything(seed) if seed else None
    )


def unseeded_shuffle(train: Train) -> Train:
    """Shuffles with a generator seeded from OS entropy instead of (seed, epoch)."""

    def make_loader(split, batch_size, *, seed, **kwargs):
        return data_module.make_loader(split, batch_size, seed=secrets.randbelow(2**32), **kwargs)

    return _with_hooks(train, Hooks(make_loader=make_loader))


class _AugmentedInWorkers(data_module.BatchIndexedDataset):
    """Adds pixel noise in the DataLoader worker from an *unseeded* numpy generator."""

    def __getitem__(self, indices):
        images, labels, idx = super().__getitem__(indices)
        noise = np.random.default_rng().normal(0.0, 0.05, size=tuple(images.shape)).astype(np.float32)
        return (images + torch.from_numpy(noise)).clamp(0, 1), labels, idx


def unseeded_workers(train: Train) -> Train:
    """Augmentation in DataLoader workers that draws from a generator nobody seeded."""

    def make_loader(split, batch_size, **kwargs):
        kwargs["num_workers"] = 2
        with _patched("twinrun.trainers.data.BatchIndexedDataset", _AugmentedInWorkers):
            return data_module.make_loader(split, batch_size, **kwargs)

    return _with_hooks(train, Hooks(make_loader=make_loader))


def _unseeded_reparameterize(self: VAE, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    if not self.training:
        return mu
    generator = torch.Generator().manual_seed(secrets.randbits(63))  # the bug: a private, unseeded stream
    std = torch.exp(0.5 * logvar)
    return mu + torch.randn(std.shape, generator=generator) * std


def unseeded_noise(train: Train) -> Train:
    """The VAE's reparameterisation noise drawn from an unseeded private generator."""
    return _with(train, "twinrun.trainers.models.vae.VAE.reparameterize", _unseeded_reparameterize)


def hyperparameter_from_environment(train: Train) -> Train:
    """Scales the learning rate by ``$TWINRUN_BROKEN_LR_SCALE``: a hyperparameter outside the config.

    The variable differs between the two runs, as it would between two machines or CI jobs.
    """
    calls = itertools.count()
    real_instantiate = hydra.utils.instantiate

    def instantiate(node, *args, **kwargs):
        if "params" in kwargs:  # the optimizer: its lr now depends on the environment
            node = {**node, "lr": node["lr"] * float(os.environ.get("TWINRUN_BROKEN_LR_SCALE", "1"))}
        return real_instantiate(node, *args, **kwargs)

    def broken(cfg, run_dir: Path, hooks: Hooks | None = None):
        scale = "1.0" if next(calls) % 2 == 0 else "1.5"
        environment = mock.patch.dict(os.environ, {"TWINRUN_BROKEN_LR_SCALE": scale})
        with environment, _patched("hydra.utils.instantiate", instantiate):
            return train(cfg, run_dir, hooks=hooks)

    return broken


# name -> (mutation, apps it applies to, seed to run with, the cause the divergence report must name)
SENSITIVITY_SET: dict[str, tuple[Callable[[Train], Train], tuple[str, ...], int, str]] = {
    "no_seed": (no_seed, ("mnist_classifier", "vae_mnist"), 11, "unseeded start"),
    "zero_seed_is_unset": (zero_seed_is_unset, ("mnist_classifier", "vae_mnist"), 0, "unseeded start"),
    "unseeded_shuffle": (unseeded_shuffle, ("mnist_classifier", "vae_mnist"), 11, "data order"),
    "unseeded_workers": (unseeded_workers, ("mnist_classifier", "vae_mnist"), 11, "computation"),
    "unseeded_noise": (unseeded_noise, ("vae_mnist",), 11, "computation"),
    "hyperparameter_from_environment": (
        hyperparameter_from_environment,
        ("mnist_classifier", "vae_mnist"),
        11,
        "computation",
    ),
}

TRAINERS = {"mnist_classifier": mnist_classifier.train, "vae_mnist": vae_mnist.train}


# --- step-level injections for divergence forensics ------------------------------------------------


def perturb_one_ulp(step: int, parameter: str) -> Hooks:
    """After optimizer step ``step``, move one element of ``parameter`` by one ULP."""

    def hook(ctx: StepContext) -> None:
        if ctx.step == step:
            tensor = dict(ctx.model.named_parameters())[parameter]
            with torch.no_grad():
                flat = tensor.view(-1)
                flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))

    return Hooks(after_step=[hook])


EXTRA_DRAWS = {"torch": lambda: torch.rand(1), "numpy": np.random.rand, "python": random.random}


def extra_rng_draw(step: int, stream: str = "torch") -> Hooks:
    """One extra draw from the global ``stream`` RNG (torch, numpy or python) just before step ``step``."""
    draw = EXTRA_DRAWS[stream]

    def hook(ctx: StepContext) -> None:
        if ctx.step == step:
            draw()

    return Hooks(before_step=[hook])


def reshuffled_from_epoch(epoch: int) -> Hooks:
    """From epoch ``epoch`` on, batches come in a different order."""

    def make_loader(split, batch_size, *, seed, epoch: int, **kwargs):
        shuffle_seed = seed + 1 if epoch >= reshuffled_epoch else seed
        return data_module.make_loader(split, batch_size, seed=shuffle_seed, epoch=epoch, **kwargs)

    reshuffled_epoch = epoch
    return Hooks(make_loader=make_loader)


def with_hooks(train: Train, hooks: Hooks) -> Train:
    return functools.partial(train, hooks=hooks)
