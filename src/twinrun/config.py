"""Where the configs live, and the canonical form of a resolved job config.

Import-light on purpose (no torch): the CLI, the comparer and the pytest plugin use it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from twinrun.errors import TwinrunError

# Keys whose values legitimately differ between two runs of the same experiment (paths, times) and
# that therefore never take part in a comparison. Matched against the dotted key and its last part.
VOLATILE_PATTERNS: tuple[str, ...] = (
    "hydra",
    "hydra.*",
    "data.root",
    "training.resume_from",
    "*_dir",
    "*_path",
    "*timestamp*",
    "*_time",
)


class ConfigError(TwinrunError, ValueError):
    """A configuration value that cannot be used; the message says what to do instead."""


SEED_MAX = 2**32 - 1  # seeds are what numpy's legacy seeding accepts: [0, 2**32 - 1]


def config_dir() -> Path:
    """The directory holding ``vae_mnist.yaml`` and friends.

    A built wheel ships the configs inside the package (``twinrun/conf``); a source checkout (editable
    install) keeps them in the top-level ``conf/``.
    """
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"twinrun's configs are missing: looked in {packaged} and {checkout}")


def is_volatile(dotted_key: str, patterns: Iterable[str] = VOLATILE_PATTERNS) -> bool:
    """True when ``dotted_key`` names a path/time-like value excluded from comparisons."""
    last = dotted_key.rsplit(".", 1)[-1]
    return any(fnmatch.fnmatchcase(dotted_key, p) or fnmatch.fnmatchcase(last, p) for p in patterns)


def canonicalize(tree: Any, patterns: Iterable[str] = VOLATILE_PATTERNS, _prefix: str = "") -> Any:
    """Drop volatile keys from a plain (already resolved) config tree; mappings come back key-sorted."""
    patterns = tuple(patterns)
    if isinstance(tree, Mapping):
        out = {}
        for key in sorted(tree, key=str):
            dotted = f"{_prefix}{key}"
            if is_volatile(dotted, patterns):
                continue
            out[str(key)] = canonicalize(tree[key], patterns, dotted + ".")
        return out
    if isinstance(tree, list | tuple):
        return [canonicalize(item, patterns, _prefix) for item in tree]
    return tree


def resolved_container(cfg: Any) -> dict[str, Any]:
    """``cfg`` with every interpolation resolved, as plain python containers (``hydra`` node dropped)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        tree = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    else:
        tree = dict(cfg)
    assert isinstance(tree, dict)
    tree.pop("hydra", None)
    return tree


def canonical_config(cfg: Any, patterns: Iterable[str] = VOLATILE_PATTERNS) -> dict[str, Any]:
    """The comparable form of a job config: resolved, volatile keys excluded, keys sorted."""
    return canonicalize(resolved_container(cfg), patterns)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are leaves."""
    if isinstance(tree, Mapping) and tree:
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: tree} if prefix else {}


def check_seed(seed: Any) -> int | None:
    """Validate ``cfg.seed``: an int in [0, 2**32 - 1] (0 included) or ``None`` (draw one)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed={seed!r} is not usable: give an integer in [0, 4294967295] or seed=null")
    return seed


def check_device(device: Any) -> str:
    """Validate ``cfg.device``."""
    if device not in ("cpu", "cuda", "auto") and not (isinstance(device, str) and device.startswith("cuda:")):
        raise ConfigError(f"device={device!r} is not usable: choose device=cpu, device=cuda or device=auto")
    return str(device)


def _check_count(key: str, value: Any, least: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        null = " or null" if optional else ""
        raise ConfigError(f"{key}={value!r} is not usable: give an integer >= {least}{null}")


def check_training(training: Mapping[str, Any]) -> None:
    """Validate the ``training`` node's counts before anything is built or written."""
    _check_count("training.epochs", training.get("epochs"), 1)
    _check_count("training.batch_size", training.get("batch_size"), 1)
    _check_count("training.num_workers", training.get("num_workers", 0), 0)
    _check_count("training.max_steps", training.get("max_steps"), 1, optional=True)


def check_run_options(cfg: Mapping[str, Any]) -> None:
    """Validate the switches that change what a run records: booleans must be booleans (YAML reads
    ``maybe`` or ``off`` as strings, and a non-empty string is truthy), counts must be counts."""
    deterministic = cfg.get("deterministic", True)
    if not isinstance(deterministic, bool):
        raise ConfigError(f"deterministic={deterministic!r} is not usable: give true or false")
    trace = cfg.get("trace") or {}
    _check_count("trace.params_every", trace.get("params_every", 1), 1)
    ckpt = cfg.get("checkpoint") or {}
    every_epoch = ckpt.get("every_epoch", True)
    if not isinstance(every_epoch, bool):
        raise ConfigError(f"checkpoint.every_epoch={every_epoch!r} is not usable: give true or false")
    _check_count("checkpoint.every_n_steps", ckpt.get("every_n_steps"), 1, optional=True)
    _check_count("checkpoint.keep_last", ckpt.get("keep_last"), 1, optional=True)


def check_optimizer(node: Any) -> None:
    """The ``optimizer`` node must name a ``torch.optim.Optimizer`` class and give a finite ``lr``.

    Checked before ``hydra.utils.instantiate`` runs: ``_target_`` may name any callable, and calling an
    arbitrary one with ``params=`` is not what anyone meant.
    """
    import math

    if not isinstance(node, Mapping) or not isinstance(node.get("_target_"), str):
        raise ConfigError(f"optimizer={node!r} is not usable: give _target_ (e.g. torch.optim.Adam) and lr")
    target = node["_target_"]
    if not _is_torch_optimizer(target):
        raise ConfigError(
            f"optimizer._target_={target} is not a torch optimizer: name a torch.optim.Optimizer "
            "class, e.g. optimizer._target_=torch.optim.SGD"
        )
    lr = node.get("lr")
    if lr is not None and (
        isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr < 0
    ):
        raise ConfigError(f"optimizer.lr={lr!r} is not usable: give a finite number >= 0")


def is_subclass_target(target: Any, base: type) -> bool:
    """Whether the dotted ``target`` names a subclass of ``base``, found without calling anything but
    imports (quietly: hydra's ``get_class`` logs every failed lookup)."""
    import importlib

    if not isinstance(target, str):
        return False
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
            for name in parts[cut:]:
                found = getattr(found, name)
        except Exception:  # not importable, no such attribute, a module that fails on import
            continue
        return isinstance(found, type) and issubclass(found, base)
    return False


def _is_torch_optimizer(target: str) -> bool:
    import torch

    return is_subclass_target(target, torch.optim.Optimizer)


def build_optimizer(node: Any, params: Any) -> Any:
    """``instantiate(node, params=params)`` after :func:`check_optimizer`; its errors in one line."""
    from hydra.utils import instantiate

    from twinrun.errors import first_line

    check_optimizer(node)
    try:
        return instantiate(node, params=params)
    except Exception as exc:  # torch's own checks (betas, weight_decay...), unknown keyword arguments
        cause = exc.__cause__ or exc
        raise ConfigError(f"optimizer={node['_target_']} cannot be built: {first_line(cause)}") from None
