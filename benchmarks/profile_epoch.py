"""Where a twinrun epoch's time goes, beyond the bare loop's compute (run with ``--profile``, or
automatically when the epoch misses its target).

Three views, each at ``profile_samples`` (per-step costs do not depend on the epoch's length):

1. an instrumented ``fit`` epoch: the loader's ``next()`` and the trace's ``before_step`` /
   ``after_step`` timed directly (two ``perf_counter`` calls each), next to a bare-loop epoch;
2. each per-step piece timed in isolation (RNG snapshot and digests, ``batch_digest``, parameter sums,
   the DataLoader per batch without compute, tqdm's ``set_postfix``);
3. cProfile of one ``fit`` epoch (enabled when the epoch's loader is built, disabled when it is
   exhausted, so evaluation and writing are not in it). cProfile inflates Python-heavy code
   relative to C kernels: use it for *where*, views 1 and 2 for *how much*.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from benchmarks.common import (
    Context,
    compose,
    cycles,
    median,
    patched_trace_recorder,
    timed_trace_class,
    timed_train,
)
from benchmarks.table import Row


class _TimedIterable:
    """Wraps the epoch's DataLoader: times ``iter()`` and every ``next()``; optional start/stop calls."""

    def __init__(self, loader: Any, on_end: Callable[[], None] | None = None) -> None:
        self.loader, self.on_end = loader, on_end
        self.seconds, self.batches = 0.0, 0
        self.fetches: list[float] = []  # seconds of each next() that produced a batch

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        start = time.perf_counter()
        iterator = iter(self.loader)
        self.seconds += time.perf_counter() - start
        while True:
            start = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                self.seconds += time.perf_counter() - start
                if self.on_end is not None:
                    self.on_end()
                return
            self.fetches.append(time.perf_counter() - start)
            self.seconds += self.fetches[-1]
            self.batches += 1
            yield batch


def instrumented_epoch(cfg: Any, ctx: Context) -> dict[str, float]:
    """Median milliseconds per step of one real ``fit`` epoch: iteration, loader, trace before/after."""
    from twinrun.trainers.data import make_loader
    from twinrun.trainers.loop import Hooks

    loaders: list[_TimedIterable] = []
    stamps: list[float] = []

    def timed_make_loader(*args: Any, **kwargs: Any) -> _TimedIterable:
        loaders.append(_TimedIterable(make_loader(*args, **kwargs)))
        return loaders[-1]

    trace_cls = timed_trace_class()
    hooks = Hooks(make_loader=timed_make_loader, before_step=[lambda _c: stamps.append(time.perf_counter())])
    with patched_trace_recorder(trace_cls):
        timed_train("vae_mnist", cfg, ctx.scratch, hooks=hooks)
    fetches = [f for loader in loaders for f in loader.fetches]
    return {
        "steps": len(fetches),
        "step": 1000.0 * median(cycles(stamps)),
        "loader": 1000.0 * median(fetches),
        "trace_before": 1000.0 * median(trace_cls.befores),  # type: ignore[attr-defined]
        "trace_after": 1000.0 * median(trace_cls.afters),  # type: ignore[attr-defined]
        "trace_flush": 1000.0 * sum(trace_cls.flushes) / max(len(fetches), 1),  # type: ignore[attr-defined]
    }


def _per_call_us(fn: Callable[[], Any], calls: int) -> float:
    fn()  # first call out of the clock (lazy imports, allocations)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def isolated_costs(cfg: Any, batch_size: int) -> dict[str, float]:
    """Microseconds per call of each per-step piece, measured alone (median of 5 batches of calls)."""
    import hydra.utils
    import torch
    from tqdm import tqdm

    from twinrun.record.rng_state import rng_snapshot, snapshot_digests
    from twinrun.record.trace import ParamFingerprints, batch_digest
    from twinrun.trainers.data import load_datasets, make_loader

    model = hydra.utils.instantiate(cfg.model)
    split = load_datasets(cfg.data).train
    indices = torch.arange(batch_size)
    batches = len(split) // batch_size
    shuffled = split.images[torch.randperm(len(split))]

    def loader_epoch() -> None:
        for _ in make_loader(split, batch_size, seed=0, epoch=1):
            pass

    def slice_epoch() -> None:
        for lo in range(0, len(split), batch_size):
            shuffled[lo : lo + batch_size]

    bar = tqdm(range(1), disable=True)
    fingerprints = ParamFingerprints(model)
    snapshot, sums = rng_snapshot(), fingerprints.capture()
    pieces: dict[str, Callable[[], Any]] = {
        "rng_snapshot": rng_snapshot,
        "rng_digests": lambda: snapshot_digests(snapshot),
        "batch_digest": lambda: batch_digest(indices),
        "param_sums": fingerprints.capture,
        "param_hex": sums.hex,
        "tqdm_set_postfix": lambda: bar.set_postfix(loss=f"{1.2345:.4f}", refresh=False),
    }
    out = {name: median([_per_call_us(fn, 200) for _ in range(5)]) for name, fn in pieces.items()}
    out["loader_per_batch"] = median([_per_call_us(loader_epoch, 1) / batches for _ in range(5)])
    out["slice_per_batch"] = median([_per_call_us(slice_epoch, 1) / batches for _ in range(5)])
    return out


# (label, file suffix, function name, "cum" or "tot") — the pieces of a step worth naming.
_PROFILE_PIECES: Sequence[tuple[str, str, str, str]] = (
    ("whole step (_Loop._step)", "twinrun/training.py", "_step", "cum"),
    ("forward + loss", "twinrun/objectives.py", "loss", "cum"),
    ("backward", "torch/_tensor.py", "backward", "cum"),
    ("optimizer.step (Adam)", "torch/optim/adam.py", "step", "cum"),
    ("zero_grad", "torch/optim/optimizer.py", "zero_grad", "cum"),
    ("loss.item()", "~", "<method 'item' of 'torch._C.TensorBase' objects>", "tot"),
    ("trace.before_step", "twinrun/trace.py", "before_step", "cum"),
    ("trace.after_step", "twinrun/trace.py", "after_step", "cum"),
    ("trace.flush", "twinrun/trace.py", "flush", "cum"),
    ("DataLoader __next__", "torch/utils/data/dataloader.py", "__next__", "cum"),
    ("tqdm __iter__ (own time)", "tqdm/std.py", "__iter__", "tot"),
    ("tqdm set_postfix", "tqdm/std.py", "set_postfix", "cum"),
)


def profiled_epoch(cfg: Any, ctx: Context) -> tuple[dict[str, float], str, int]:
    """cProfile of one ``fit`` epoch loop: per-step ms of the named pieces, and the top functions."""
    from twinrun.trainers.data import make_loader
    from twinrun.trainers.loop import Hooks

    profiler = cProfile.Profile()
    loaders: list[_TimedIterable] = []

    def profiled_make_loader(*args: Any, **kwargs: Any) -> _TimedIterable:
        loader = _TimedIterable(make_loader(*args, **kwargs), on_end=profiler.disable)
        loaders.append(loader)
        profiler.enable()  # from here to the loader's end: exactly the epoch loop
        return loader

    timed_train("vae_mnist", cfg, ctx.scratch, hooks=Hooks(make_loader=profiled_make_loader))
    profiler.disable()
    steps = sum(loader.batches for loader in loaders)
    stats = pstats.Stats(profiler)
    table: dict[str, float] = {}
    for label, suffix, name, which in _PROFILE_PIECES:
        total = 0.0
        for (filename, _, funcname), (_, _, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
            if funcname == name and filename.replace("\\", "/").endswith(suffix):
                total += cumtime if which == "cum" else tottime
        table[label] = 1000.0 * total / steps
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
    return table, text.getvalue(), steps


def run(ctx: Context, epoch_overrides: Sequence[str], missed: bool) -> list[Row]:
    """Instrumented, isolated and cProfile views of the epoch; rows plus a details section."""
    from benchmarks.epoch import bare_epoch

    n = ctx.sizes.profile_samples
    overrides = [o for o in epoch_overrides if not o.startswith("data.train_samples=")]
    cfg = compose("vae_mnist", [*overrides, f"data.train_samples={n}"])
    batch = int(cfg.training.batch_size)
    cmd = ctx.command("epoch", " --profile")
    print(f"  profiling a {n}-sample epoch (instrumented, isolated pieces, cProfile)", flush=True)

    import torch

    from twinrun.trainers.data import load_datasets

    split = load_datasets(cfg.data).train
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(int(cfg.seed)))
    images, labels = split.images[order], split.labels[order]
    # Two rounds, bare and instrumented fit side by side; medians per step, the faster round of each.
    rounds = [(bare_epoch(cfg, images, labels, batch), instrumented_epoch(cfg, ctx)) for _ in range(2)]
    bare_ms = 1000.0 * min(b.step for b, _ in rounds)
    inst = min((i for _, i in rounds), key=lambda i: i["step"])
    trace_ms = inst["trace_before"] + inst["trace_after"] + inst["trace_flush"]
    rest = inst["step"] - inst["loader"] - inst["trace_before"] - inst["trace_after"]
    iso = isolated_costs(cfg, batch)
    cprof, top, steps = profiled_epoch(cfg, ctx)

    trace_pieces = ("rng_snapshot", "rng_digests", "batch_digest", "param_sums", "param_hex")
    trace_iso = sum(iso[piece] for piece in trace_pieces)
    lines = [
        f"### Epoch profile ({n:,} samples, batch {batch}, {steps} steps; "
        f"{'run because the 1.15x target was missed' if missed else 'run on request (--profile)'})",
        "",
        "Per step (medians), instrumented fit epoch (direct timers, faster of 2 rounds) vs a bare-loop step:",
        f"- fit step total {inst['step']:.2f} ms; bare-loop step {bare_ms:.2f} ms; "
        f"difference {inst['step'] - bare_ms:+.2f} ms ({inst['step'] / bare_ms:.2f}x)",
        f"- DataLoader next() {inst['loader']:.3f} ms; trace.before_step {inst['trace_before']:.3f} ms; "
        f"trace.after_step {inst['trace_after']:.3f} ms; trace.flush {inst['trace_flush']:.3f} ms a step "
        f"(at the epoch's end); everything else in the loop (model step, .item(), "
        f"tqdm, hooks) {rest:.2f} ms",
        "",
        "Per call, each piece alone (median of 5 x 200 calls):",
        f"- per step: rng_snapshot {iso['rng_snapshot']:.1f} us; "
        f"param sums (VAE) {iso['param_sums']:.1f} us; "
        f"batched: rng digests {iso['rng_digests']:.1f} us, batch_digest {iso['batch_digest']:.1f} us, "
        f"param hex {iso['param_hex']:.1f} us (trace total {trace_iso:.1f} us/step)",
        f"- DataLoader per batch without compute {iso['loader_per_batch']:.1f} us vs tensor slice "
        f"{iso['slice_per_batch']:.1f} us; tqdm set_postfix (disabled bar) {iso['tqdm_set_postfix']:.1f} us",
        "",
        "cProfile of the epoch loop, ms per step (inflated by profiling; relative sizes):",
        *[f"- {label}: {ms:.3f}" for label, ms in cprof.items()],
        "",
        "cProfile top 20 by own time:",
        "```",
        top.strip(),
        "```",
    ]
    ctx.details.append("\n".join(lines))
    return [
        Row(
            f"epoch profile: per-step ms, fit vs bare ({n:,} samples)",
            f"fit {inst['step']:.2f} vs bare {bare_ms:.2f} ms; loader {inst['loader']:.3f}, "
            f"trace {trace_ms:.3f}, rest {rest:.2f}",
            command=cmd,
        ),
        Row(
            "epoch profile: per-step pieces alone (us)",
            f"trace {trace_iso:.0f} (params {iso['param_sums'] + iso['param_hex']:.0f}, "
            f"rng {iso['rng_snapshot'] + iso['rng_digests']:.0f}, batch {iso['batch_digest']:.0f}); "
            f"loader {iso['loader_per_batch']:.0f} vs slice "
            f"{iso['slice_per_batch']:.0f}; tqdm {iso['tqdm_set_postfix']:.1f}",
            command=cmd,
        ),
    ]
