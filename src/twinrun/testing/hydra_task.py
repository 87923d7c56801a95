"""Run a Hydra task function in the test process the way ``@hydra.main`` runs it.

A task written for ``@hydra.main`` (``task(cfg)``, the Lightning + Hydra template's ``train``) finds its
output directory through ``HydraConfig.get().runtime.output_dir``; after ``compose`` that raises
"HydraConfig was not set". :func:`hydra_run` does what Hydra's ``run_job`` does around the call, with a
directory of the caller's choosing: sets ``HydraConfig`` (``hydra.run.dir`` and
``hydra.runtime.output_dir`` = the run directory), writes ``.hydra/config.yaml``, ``hydra.yaml`` and
``overrides.yaml``, sends every log record to ``<run_dir>/<job name>.log``, applies ``hydra.job.env_set``
and ``hydra.job.chdir``. Everything global is put back afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinrun.config import ConfigError, canonical_config

if TYPE_CHECKING:
    from omegaconf import DictConfig

RUN_DIR_PLACEHOLDER = "<run_dir>"
_TASK_MARK = "__twinrun_task__"


def unwrap_hydra_main(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The task function under ``@hydra.main`` (``fn`` itself when it is not decorated by Hydra)."""
    wrapped = getattr(fn, "__wrapped__", None)
    # functools.wraps copies __module__ from the task: Hydra's wrapper shows in its globals only.
    if wrapped is not None and getattr(fn, "__globals__", {}).get("__name__") == "hydra.main":
        return wrapped
    return fn


def hydra_task(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Mark ``fn`` as a task ``task(cfg)`` for ``twinrun_twins`` when its signature is ambiguous."""
    task = unwrap_hydra_main(fn)

    def marked(cfg: Any) -> Any:
        return task(cfg)

    setattr(marked, _TASK_MARK, task)
    marked.__name__ = getattr(task, "__name__", "task")
    return marked


def as_task(fn: Callable[..., Any]) -> Callable[[Any], Any] | None:
    """The task function when ``fn`` is one (``@hydra.main``-decorated, marked, or takes one
    positional argument); None when ``fn`` is a ``train(cfg, run_dir)``."""
    marked = getattr(fn, _TASK_MARK, None)
    if marked is not None:
        return marked
    unwrapped = unwrap_hydra_main(fn)
    if unwrapped is not fn:
        return unwrapped
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return fn  # cannot take (cfg, run_dir): a task(cfg)
    except ValueError:  # no signature (a builtin): assume the documented train(cfg, run_dir)
        return None
    return None


def job_name(fn: Callable[..., Any]) -> str:
    """The job name ``@hydra.main`` gives ``fn``'s app: the stem of the file that defines it."""
    fn = getattr(fn, _TASK_MARK, None) or unwrap_hydra_main(fn)
    try:
        source = inspect.getsourcefile(inspect.unwrap(fn))
    except TypeError:
        source = None
    if source:
        return Path(source).stem
    return str(getattr(fn, "__module__", "app") or "app").rsplit(".", 1)[-1]


def _hydra_node(cfg: DictConfig, name: str) -> DictConfig:
    """``cfg``'s own ``hydra`` node (composed with ``return_hydra_config=True``), else Hydra's defaults."""
    from twinrun.testing.compose import hydra_defaults

    return copy.deepcopy(cfg.hydra) if "hydra" in cfg else hydra_defaults(name).hydra


def _save_yaml(cfg: Any, path: Path) -> None:
    from omegaconf import OmegaConf

    from twinrun.record.runs import write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, OmegaConf.to_yaml(cfg))  # what Hydra's own _save_config writes


@contextlib.contextmanager
def hydra_run(
    cfg: DictConfig,
    run_dir: str | Path,
    name: str,
    overrides: Sequence[str] | None = None,
) -> Iterator[DictConfig]:
    """Set up a Hydra run of job ``name`` writing into ``run_dir``; yield the task's config.

    ``overrides`` (default: those recorded in ``cfg.hydra``, if any) go to ``.hydra/overrides.yaml``.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import env_override
    from omegaconf import OmegaConf, open_dict, read_write

    from twinrun.record.runs import job_log

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    node = _hydra_node(cfg, name)
    with read_write(node), open_dict(node):
        node.run.dir = str(run_dir)
        node.runtime.output_dir = str(run_dir)
        node.runtime.cwd = os.getcwd()
        node.job.name = name
        if overrides is not None:
            node.overrides.task = list(overrides)
        # What @hydra.main records for `app hydra.run.dir=DIR` (the command-line form of a run), so the
        # two forms leave the same .hydra/hydra.yaml but for the run's own path.
        if node.get("mode") is None:
            node.mode = "RUN"
            node.overrides.hydra = [*node.overrides.hydra, f"hydra.run.dir={run_dir}", "hydra.mode=RUN"]
    task_cfg = copy.deepcopy(cfg)
    with read_write(task_cfg), open_dict(task_cfg):
        task_cfg.pop("hydra", None)
    full = copy.deepcopy(task_cfg)
    with open_dict(full):
        full.hydra = node
    previous = HydraConfig.instance().cfg
    old_cwd = os.getcwd()
    try:
        HydraConfig.instance().set_config(full)
        if node.output_subdir is not None:
            meta = run_dir / str(node.output_subdir)
            _save_yaml(task_cfg, meta / "config.yaml")
            _save_yaml(HydraConfig.instance().cfg, meta / "hydra.yaml")
            _save_yaml(node.overrides.task, meta / "overrides.yaml")
        env = OmegaConf.to_container(node.job.env_set, resolve=True)
        with job_log(run_dir, name), env_override({str(k): str(v) for k, v in env.items()}):
            if node.job.chdir:
                os.chdir(run_dir)
            yield task_cfg
    finally:
        os.chdir(old_cwd)
        HydraConfig.instance().cfg = previous


def _relocated(tree: Any, run_dir: str) -> Any:
    """Strings under the run's own directory written relative to a placeholder, so twins can agree."""
    if isinstance(tree, dict):
        return {key: _relocated(value, run_dir) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_relocated(item, run_dir) for item in tree]
    if isinstance(tree, str):
        return tree.replace(run_dir, RUN_DIR_PLACEHOLDER)
    return tree


def write_task_config(task_cfg: DictConfig, run_dir: str | Path) -> None:
    """Write ``resolved_config.yaml`` for a task's config; call inside :func:`hydra_run`."""
    from twinrun.errors import first_line
    from twinrun.record.runs import write_resolved_config

    try:
        canonical = canonical_config(task_cfg)
    except Exception as exc:  # omegaconf raises several kinds; the config is what is wrong
        raise ConfigError(
            f"the task's config does not resolve ({first_line(exc)}); fix the config or override the key"
        ) from None
    write_resolved_config(Path(run_dir), _relocated(canonical, str(Path(run_dir).resolve())))


def run_task(task: Callable[[Any], Any], cfg: DictConfig, run_dir: str | Path, name: str) -> Any:
    """Call ``task`` as ``@hydra.main`` would, writing into ``run_dir``; record its resolved config."""
    with hydra_run(cfg, run_dir, name) as task_cfg:
        write_task_config(task_cfg, run_dir)
        return task(task_cfg)


def as_train(fn: Callable[..., Any]) -> Callable[[Any, Path], Any]:
    """``train(cfg, run_dir)`` for ``fn``: itself, or a task run in a Hydra run of ``run_dir``."""
    task = as_task(fn)
    if task is None:
        return fn
    name = job_name(fn)

    def train(cfg: Any, run_dir: Path) -> Any:
        return run_task(task, cfg, run_dir, name)

    return train
