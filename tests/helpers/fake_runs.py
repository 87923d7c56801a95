"""Fake run directories written with :mod:`twinrun.record.runs`' own writers: no trainer needed.

``make_run(path)`` writes a small but complete run (weights + manifest, resolved config, Hydra's record,
job log, metrics, trace, env). Two calls with the same arguments give twin runs that differ only where
real twins differ: timestamps, durations and the run directory's path in the log. The mutators below
(``flip_bit``, ``set_tensor``, ``edit_jsonl``, ...) then plant one precise difference.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from twinrun.record import runs

LOG_NAME = "vae_mnist"
PARAMS = ("encoder.weight", "encoder.bias", "decoder.weight")


class TinyNet(nn.Module):
    """A module importable by its qualified name, for pickled-module (legacy) tests."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)


def tiny_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Parameters and buffers of several dtypes, a few hundred bytes in all."""
    g = torch.Generator().manual_seed(seed)
    return {
        "encoder.weight": torch.randn(4, 3, generator=g),
        "encoder.bias": torch.randn(4, generator=g),
        "decoder.weight": torch.randn(3, 4, generator=g).to(torch.float64),
        "norm.running_mean": torch.zeros(4, dtype=torch.float16),
        "norm.num_batches_tracked": torch.tensor(8, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
    }


def default_config() -> dict[str, Any]:
    """A canonical config as the trainers write it (sorted keys, no volatile keys)."""
    return {
        "data": {"name": "synthetic", "test_samples": 32, "train_samples": 64},
        "device": "cpu",
        "model": {"hidden": 16, "latent": 2},
        "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.001},
        "seed": 0,
        "training": {"batch_size": 8, "epochs": 2, "num_workers": 0},
    }


def _digest(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


def metrics_rows(epochs: int = 2, steps_per_epoch: int = 3, jitter: int = 0) -> list[dict[str, Any]]:
    rows = []
    for epoch in range(1, epochs + 1):
        train, test = 200.0 / epoch + 0.125, 190.0 / epoch + 0.0625
        rows.append(
            {
                "epoch": epoch,
                "step": epoch * steps_per_epoch,
                "train_loss": runs.exact(train),
                "test_loss": runs.exact(test),
                "approx": {"train_loss": round(train, 4), "test_loss": round(test, 4)},
                "epoch_time": 1.0 + epoch / 7 + jitter / 100,  # volatile: ignored by the comparer
            }
        )
    return rows


def trace_rows(epochs: int = 2, steps_per_epoch: int = 3, params_every: int = 2) -> list[dict[str, Any]]:
    """One row per step; parameters traced every ``params_every`` steps and at the last step."""
    total = epochs * steps_per_epoch
    rows = []
    for step in range(1, total + 1):
        row: dict[str, Any] = {
            "step": step,
            "epoch": (step - 1) // steps_per_epoch + 1,
            "batch": _digest("batch", step),
            "rng": {s: _digest(s, step) for s in ("python", "numpy", "torch")},
            "loss": runs.exact(100.0 / step),
        }
        if step % params_every == 0 or step == total:
            row["params"] = {name: _digest(name, step) for name in PARAMS}
        rows.append(row)
    return rows


def environment(**changes: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": "3.11.7",
        "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
        "machine": "x86_64",
        "torch": "2.14.1",
        "torchvision": "0.29.1",
        "hydra": "1.3.2",
        "numpy": "2.1.0",
        "cuda": None,
        "cudnn": None,
        "device": "cpu",
        "device_name": "Fake CPU @ 3GHz",
        "cpu": "Fake CPU @ 3GHz",
        "threads": {"intra_op": 2, "inter_op": 2},
        "determinism": {"deterministic_algorithms": True, "cudnn_benchmark": False},
        "env_vars": {"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "OMP_NUM_THREADS": None},
        "dataset": {"name": "synthetic", "sha256": "ab" * 32},
        "git": {"commit": "0" * 40, "dirty": False},
    }
    env.update(changes)
    return env


def log_text(run_dir: Path, jitter: int, epochs: int = 2) -> str:
    """A job log whose timestamps, durations, rates and run path vary with ``jitter`` only."""
    rnd = random.Random(jitter)

    def stamp(i: int) -> str:
        when = f"2026-11-27 23:{50 + jitter % 9:02d}:{i:02d},{rnd.randrange(1000):03d}"
        return f"[{when}][twinrun.trainers.loop][INFO] - "

    lines = [f"run directory: {run_dir}", "seed 0, device cpu, deterministic mode on"]
    for epoch in range(1, epochs + 1):
        lines.append(
            f"epoch {epoch}/{epochs} train_loss={200 / epoch:.4f} test_loss={190 / epoch:.4f} "
            f"({rnd.uniform(0.5, 3):.2f}s)"
        )
        lines.append(f"throughput {rnd.uniform(50, 900):.1f} it/s, data took {rnd.randrange(1, 99)} ms")
    lines.append(f"saved weights to {run_dir}/{runs.WEIGHTS} in {rnd.uniform(0.1, 2):.1f}s")
    return "".join(stamp(i) + line + "\n" for i, line in enumerate(lines))


def make_run(
    path: Path,
    *,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    config: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    env: dict[str, Any] | None = None,
    jitter: int | None = None,
    log: bool = True,
    metrics: bool = True,
    trace: bool = True,
    hydra: bool = True,
) -> Path:
    """Write a complete fake run at ``path`` and return it; ``jitter`` varies only the volatile parts."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    jitter = jitter if jitter is not None else sum(path.name.encode())
    config = default_config() if config is None else config
    runs.write_weights(path, tiny_state_dict() if state_dict is None else state_dict)
    runs.write_resolved_config(path, config)
    if hydra:
        hydra_dir = path / ".hydra"
        hydra_dir.mkdir(exist_ok=True)
        full = {**config, "data": {**config.get("data", {}), "root": "/tmp/data"}}
        (hydra_dir / "config.yaml").write_text(yaml.safe_dump(full))
        (hydra_dir / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"run": {"dir": str(path)}}}))
        default_overrides = ["seed=0", f"hydra.run.dir={path}", "data.root=/tmp/data"]
        (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(overrides or default_overrides))
    if log:
        (path / f"{LOG_NAME}.log").write_text(log_text(path, jitter))
    if metrics:
        runs.write_jsonl(path / runs.METRICS, metrics_rows(jitter=jitter))
    if trace:
        runs.write_jsonl(path / runs.TRACE, trace_rows())
    runs.write_json(path / runs.ENV, environment() if env is None else env)
    write_png(path / runs.IMAGES / "samples.png", stamp=jitter)
    return path


def write_png(
    path: Path, *, compress_level: int = 6, pixel: int | None = None, stamp: int | None = None
) -> None:
    """An 8x6 grey picture; ``compress_level`` changes the bytes but not the pixels (a difference: the
    bytes decide); ``stamp`` writes a ``tIME`` chunk (a wall-clock field the comparer may excuse);
    ``pixel`` sets pixel (3, 2) to another value."""
    import struct

    import numpy as np
    from PIL import Image, PngImagePlugin

    pixels = (np.arange(48, dtype=np.uint8) * 5).reshape(6, 8)
    if pixel is not None:
        pixels[2, 3] = pixel
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    if stamp is not None:
        info.add(b"tIME", struct.pack(">HBBBBB", 2026, 11, 27, 23, stamp % 60, 0))
    Image.fromarray(pixels, mode="L").save(path, compress_level=compress_level, pnginfo=info)


def make_twins(root: Path, **kwargs: Any) -> tuple[Path, Path]:
    """Two runs of "the same experiment": equal but for timestamps, durations and paths."""
    return make_run(Path(root) / "run_a", jitter=1, **kwargs), make_run(
        Path(root) / "run_b", jitter=2, **kwargs
    )


def load_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run) / runs.WEIGHTS))


def set_tensor(run: Path, name: str, change: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Rewrite the run's weights (and manifest) with ``name`` replaced by ``change(tensor)``."""
    tensors = load_weights(run)
    tensors[name] = change(tensors[name].clone())
    runs.write_weights(run, tensors)


def flip_bit(run: Path, name: str, index: int = 0, bit: int = 0) -> None:
    """Flip one bit of element ``index`` (flat) of tensor ``name``: a 1-ULP change for bit 0 of a float."""
    int_view = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}

    def change(t: torch.Tensor) -> torch.Tensor:
        bits = t.reshape(-1).view(int_view[t.element_size()])
        bits[index] ^= 1 << bit
        return t

    set_tensor(run, name, change)


def edit_jsonl(run: Path, name: str, edit: Callable[[list[dict[str, Any]]], None]) -> None:
    """Load ``name`` (metrics.jsonl or trace.jsonl), let ``edit`` mutate the rows, write it back."""
    file = Path(run) / name
    rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    edit(rows)
    runs.write_jsonl(file, rows)


def edit_json(run: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> None:
    file = Path(run) / name
    data = json.loads(file.read_text())
    edit(data)
    runs.write_json(file, data)


def make_legacy_run(
    path: Path, *, state_dict: Mapping[str, torch.Tensor] | None = None, module: bool = False
) -> Path:
    """A course-style run: only ``trained_model.pt`` (a state dict, or a whole pickled ``TinyNet``)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if module:
        torch.manual_seed(0)
        torch.save(TinyNet(), path / "trained_model.pt")
    else:
        torch.save(dict(tiny_state_dict() if state_dict is None else state_dict), path / "trained_model.pt")
    return path


def lightning_checkpoint(
    run_dir: Path, state_dict: Mapping[str, torch.Tensor], epoch: int = 0
) -> dict[str, Any]:
    """What a Lightning checkpoint holds (plain containers only): weights, optimizer state, loop counters,
    and callback state with the run directory's absolute paths in values and keys."""
    ckpt_dir = str(Path(run_dir) / "checkpoints")
    return {
        "epoch": epoch,
        "global_step": 3 * (epoch + 1),
        "pytorch-lightning_version": "2.6.0",
        "state_dict": {f"net.{k}": v for k, v in state_dict.items()},
        "optimizer_states": [
            {
                "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2) / 7}},
                "param_groups": [{"lr": 0.1}],
            }
        ],
        "lr_schedulers": [],
        "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": epoch + 1}}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': None, 'mode': 'min'}": {
                "dirpath": ckpt_dir,
                "best_model_path": f"{ckpt_dir}/epoch_{epoch:03d}.ckpt",
                "best_k_models": {f"{ckpt_dir}/epoch_{epoch:03d}.ckpt": torch.tensor(0.5)},
            }
        },
        "hyper_parameters": {"lr": 0.1, "hidden": 4},
    }


def make_template_run(
    path: Path,
    *,
    seed: Any = 7,
    seeded: bool = True,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    jitter: int | None = None,
    losses: tuple[float, ...] = (0.5, 0.25, 0.125),
) -> Path:
    """A run shaped like the Lightning + Hydra template's: ``.hydra/``, ``train.log`` (timestamps,
    absolute paths, "Seed set to N" when seeded), ``checkpoints/{epoch_000,last}.ckpt``,
    ``csv/version_0/metrics.csv`` with a wall-clock column, ``tags.log``. Written by us, for the tests."""
    path = Path(path)
    jitter = jitter if jitter is not None else sum(path.name.encode())
    hydra_dir = path / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    config = {"seed": seed, "model": {"hidden": 4, "lr": 0.1}, "paths": {"output_dir": str(path)}}
    (hydra_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (hydra_dir / "hydra.yaml").write_text(
        yaml.safe_dump(
            {
                "hydra": {
                    "run": {"dir": str(path)},
                    "runtime": {"output_dir": str(path), "cwd": "/somewhere", "choices": {"model": "tiny"}},
                    "overrides": {"task": [f"seed={seed}"], "hydra": [f"hydra.run.dir={path}"]},
                }
            }
        )
    )
    (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump([f"seed={seed}"]))
    lines = [f"[2026-01-0{1 + jitter % 8} 10:00:0{i}][src.train][INFO] - " for i in range(4)]
    body = [
        f"Instantiating model <src.models.Tiny> in {path}",
        "Starting training!",
        "Training done (3 steps)",
    ]
    if seeded:
        body.insert(0, f"Seed set to {seed}")
    (path / "train.log").write_text(
        "".join(stamp + line + "\n" for stamp, line in zip(lines * 2, body, strict=False))
    )
    (path / "tags.log").write_text("['dev']\n")
    state = tiny_state_dict() if state_dict is None else state_dict
    (path / "checkpoints").mkdir(exist_ok=True)
    torch.save(lightning_checkpoint(path, state, 0), path / "checkpoints" / "epoch_000.ckpt")
    torch.save(lightning_checkpoint(path, state, 0), path / "checkpoints" / "last.ckpt")
    csv_dir = path / "csv" / "version_0"
    csv_dir.mkdir(parents=True, exist_ok=True)
    rows = ["epoch,step,train_loss,time"] + [
        f"0,{step},{loss},{1700000000 + jitter * 10 + step}" for step, loss in enumerate(losses)
    ]
    (csv_dir / "metrics.csv").write_text("\n".join(rows) + "\n")
    (csv_dir / "hparams.yaml").write_text(yaml.safe_dump({"lr": 0.1, "hidden": 4}))
    return path
