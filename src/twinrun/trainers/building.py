"""What the trainers build from the config (model, scheduler), checked before anything is called.

``hydra.utils.instantiate`` calls whatever ``_target_`` names. The model must be a class of the kind the
app trains and the scheduler a torch LR scheduler, both checked by import alone before the call; what the
call itself raises (a dimension torch refuses) becomes one line, as does a model that does not fit the
data. Nothing here writes to the run directory: a refused config leaves none of the run's files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from twinrun.config import ConfigError, is_subclass_target
from twinrun.errors import first_line


def _target(node: Any, key: str, what: str) -> str:
    if not isinstance(node, Mapping) or not isinstance(node.get("_target_"), str):
        raise ConfigError(f"{key}={node!r} is not usable: give _target_ ({what}) and its arguments")
    return str(node["_target_"])


def _instantiate(node: Any, key: str, target: str, **kwargs: Any) -> Any:
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except Exception as exc:  # the class's own checks, torch's (negative sizes), unknown keyword arguments
        cause = exc.__cause__ or exc
        raise ConfigError(f"{key}={target} cannot be built: {first_line(cause)}") from None


def build_model(node: Any, model_type: type[nn.Module], app_name: str) -> nn.Module:
    """``instantiate(node)`` once ``node._target_`` is known to name a ``model_type`` class."""
    target = _target(node, "model", f"a {model_type.__name__} class")
    if not is_subclass_target(target, model_type):
        raise ConfigError(
            f"model._target_={target} is not a {model_type.__name__} class: {app_name} trains "
            f"{model_type.__module__}.{model_type.__name__} (pick another model= option)"
        )
    return _instantiate(node, "model", target)


def build_scheduler(node: Any, optimizer: torch.optim.Optimizer) -> Any:
    """None for ``scheduler: null``, else a torch LR scheduler over ``optimizer``."""
    if node is None:
        return None
    target = _target(node, "scheduler", "e.g. torch.optim.lr_scheduler.StepLR")
    bases = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if not any(is_subclass_target(target, base) for base in bases):
        raise ConfigError(
            f"scheduler._target_={target} is not a torch LR scheduler: name a class of "
            "torch.optim.lr_scheduler, e.g. torch.optim.lr_scheduler.StepLR"
        )
    return _instantiate(node, "scheduler", target, optimizer=optimizer)


def check_model_fits(model: nn.Module, images: torch.Tensor) -> None:
    """A model with an ``input_dim`` must take one sample's values (28x28 = 784 for MNIST)."""
    input_dim = getattr(model, "input_dim", None)
    values = int(images[0].numel()) if len(images) else None
    if isinstance(input_dim, int) and values is not None and input_dim != values:
        shape = "x".join(str(d) for d in images.shape[1:])
        raise ConfigError(
            f"model.input_dim={input_dim} does not fit the data: a sample has {values} values ({shape}); "
            f"set model.input_dim={values}"
        )
