"""``twinrun.trainers.building``: model and scheduler checked before anything is called; one-line errors."""

from __future__ import annotations

import re

import pytest
import torch
from omegaconf import OmegaConf

from twinrun.config import ConfigError
from twinrun.trainers.building import build_model, build_scheduler, check_model_fits
from twinrun.trainers.models.cnn import CNNClassifier
from twinrun.trainers.models.vae import VAE

VAE_NODE = {"_target_": "twinrun.trainers.models.vae.VAE", "input_dim": 784, "hidden_dim": 8, "latent_dim": 2}


def test_the_apps_model_is_built() -> None:
    # control for the refusals below
    model = build_model(OmegaConf.create(VAE_NODE), VAE, "vae_mnist")
    assert isinstance(model, VAE) and model.latent_dim == 2


@pytest.mark.parametrize(
    ("node", "said"),
    [
        ({"_target_": "collections.OrderedDict"}, "_target_=collections.OrderedDict is not a VAE class"),
        ({"_target_": "nonexistent.Mod"}, "model._target_=nonexistent.Mod is not a VAE class"),
        ({"_target_": "torch.load", "f": "x.pt"}, "model._target_=torch.load is not a VAE class"),
        ({"_target_": "twinrun.trainers.models.cnn.CNNClassifier"}, "is not a VAE class"),
        ("nope", "model='nope' is not usable: give _target_"),
        ({**VAE_NODE, "hidden_dim": -1}, "built: hidden_dim=-1 is not usable: give an integer >= 1"),
        ({**VAE_NODE, "latent_dim": "abc"}, "cannot be built: latent_dim='abc' is not usable"),
        ({**VAE_NODE, "latent_dim": 0}, "cannot be built: latent_dim=0 is not usable"),
        ({**VAE_NODE, "latent_dim": True}, "cannot be built: latent_dim=True is not usable"),
        ({**VAE_NODE, "width": 3}, "cannot be built: "),  # an argument the class does not take
    ],
)
def test_unusable_models_are_one_line_errors(node, said) -> None:
    node = OmegaConf.create({"m": node}).m
    with pytest.raises(ConfigError, match=re.escape(said)) as error:
        build_model(node, VAE, "vae_mnist")
    assert "\n" not in str(error.value)


def test_classifier_sizes_are_checked() -> None:
    base = {"_target_": "twinrun.trainers.models.cnn.CNNClassifier", "channels": [4], "hidden": 8}
    assert isinstance(build_model(OmegaConf.create(base), CNNClassifier, "c"), CNNClassifier)
    bad = [({"hidden": 0}, "hidden=0"), ({"channels": []}, "channels=[]"), ({"channels": [0]}, "[0]")]
    for change, said in bad:
        with pytest.raises(ConfigError, match=re.escape(said)):
            build_model(OmegaConf.create({**base, **change}), CNNClassifier, "c")


def test_schedulers() -> None:
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    assert build_scheduler(None, optimizer) is None
    step = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1}
    assert isinstance(build_scheduler(OmegaConf.create(step), optimizer), torch.optim.lr_scheduler.StepLR)
    for node, said in [
        ("nope", "scheduler='nope' is not usable: give _target_"),
        ({"_target_": "torch.nn.Linear"}, "scheduler._target_=torch.nn.Linear is not a torch LR scheduler"),
        ({**step, "width": 1}, "scheduler=torch.optim.lr_scheduler.StepLR cannot be built"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(said)):
            build_scheduler(OmegaConf.create({"s": node}).s, optimizer)


def test_a_model_that_does_not_fit_the_data_is_refused() -> None:
    images = torch.zeros(3, 1, 28, 28)
    check_model_fits(VAE(input_dim=784, hidden_dim=4, latent_dim=2), images)  # control
    check_model_fits(torch.nn.Linear(2, 2), images)  # no input_dim: nothing to check
    said = "model.input_dim=10 does not fit the data: a sample has 784 values (1x28x28)"
    with pytest.raises(ConfigError, match=re.escape(said)):
        check_model_fits(VAE(input_dim=10, hidden_dim=4, latent_dim=2), images)
