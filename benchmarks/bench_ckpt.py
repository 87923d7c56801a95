"""Benchmark comparing two large Lightning-style ``.ckpt`` files (torch zip format).

    python benchmarks/bench_ckpt.py [--size-mb 1024] [--tensor-mb 64] [--repeat 1] [--dir DIR] [--legacy]

Builds a checkpoint holding ``--size-mb`` MiB of float32 tensors (at most ``--tensor-mb`` each) under
``state_dict``, with Adam-like ``optimizer_states``, loop counters and callback state that hold the run
directory's path; a twin in another directory (identical after path normalization) and a twin whose
last tensor differs in one element. Each comparison runs
``twinrun.compare.judge.tensor_files.compare_tensor_files`` in a fresh child process, so its peak RSS is its
own (VmHWM reset after a warm-up on tiny files). Throughput is the size of ONE file divided by the wall
time; the files were just written, so they come from the page cache: this measures the comparer, not the
disk. Targets (issue 12): >= 1 GB/s, and peak RSS increase < 1/4 of one file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_compare import _reset_peak_rss, _status_kib

MiB = 1 << 20
NAME = "last.ckpt"


def _checkpoint(run: Path, size_mb: float, tensor_mb: int, seed: int, bump_last: bool) -> dict[str, object]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    state, left, i = {}, int(size_mb * MiB), 0
    while left > 0:
        nbytes = min(tensor_mb * MiB, left)
        state[f"net.layer{i:03d}.weight"] = torch.randn(nbytes // 4, generator=generator)
        left, i = left - nbytes, i + 1
    if bump_last:
        state[f"net.layer{i - 1:03d}.weight"].view(torch.int32)[-1] ^= 1  # one element, 1 ULP, at the end
    best = f"{run}/checkpoints/epoch_000.ckpt"
    return {
        "epoch": 3,
        "global_step": 1200,
        "state_dict": state,
        "optimizer_states": [{"state": {0: {"step": torch.tensor(1200.0)}}, "param_groups": [{"lr": 1e-3}]}],
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 3, "completed": 3}}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/loss'}": {"dirpath": str(run), "best_k_models": {best: 0.5}}
        },
        "hyper_parameters": {"lr": 1e-3, "out": str(run)},
    }


def build(root: Path, size_mb: float, tensor_mb: int, legacy: bool) -> None:
    """Runs a, same (identical in another dir), one (one element differs), plus a tiny warm-up pair."""
    import torch

    for name, size, bump in (("a", size_mb, False), ("same", size_mb, False), ("one", size_mb, True)):
        run = root / name
        run.mkdir(parents=True)
        ckpt = _checkpoint(run, size, tensor_mb, 0, bump)
        torch.save(ckpt, run / NAME, _use_new_zipfile_serialization=not legacy)
        del ckpt
    for name in ("warm_a", "warm_b"):
        (root / name).mkdir()
        torch.save(_checkpoint(root / name, 1, 1, 0, name == "warm_b"), root / name / NAME)


def _compare(a: Path, b: Path) -> str:
    from twinrun.compare.judge.tensor_files import compare_tensor_files

    dirs = {"a": str(a.parent), "b": str(b.parent)}
    section = compare_tensor_files(
        a, b, label=NAME, normalize=lambda text, side: text.replace(dirs[side], "<run>")
    )
    return section.status


def child(a: str, b: str) -> None:
    """One comparison; prints seconds, RSS increase (KiB) and status as JSON."""
    warm = Path(a).parent.parent
    _compare(warm / "warm_a" / NAME, warm / "warm_b" / NAME)
    exact = _reset_peak_rss() and _status_kib("VmHWM") is not None
    baseline = _status_kib("VmRSS") if exact else 0
    start = time.perf_counter()
    status = _compare(Path(a), Path(b))
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") if exact else None
    rss = None if peak is None or baseline is None else peak - baseline
    print(json.dumps({"seconds": seconds, "rss_increase_kib": rss, "status": status}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=1024, help="MiB of tensors per file (default 1024)")
    parser.add_argument("--tensor-mb", type=int, default=64, help="largest tensor in MiB (default 64)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is shown")
    parser.add_argument("--dir", type=Path, help="where to build the files (default: a temp directory)")
    parser.add_argument("--legacy", action="store_true", help="torch's legacy (non-zip) format instead")
    parser.add_argument("--child", nargs=2, metavar=("A", "B"), help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.build:
        build(args.build, args.size_mb, args.tensor_mb, args.legacy)
        return 0
    root = Path(tempfile.mkdtemp(prefix="twinrun-bench-ckpt-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        command = [sys.executable, __file__, "--build", str(root), "--size-mb", str(args.size_mb)]
        subprocess.run(
            [*command, "--tensor-mb", str(args.tensor_mb), *(["--legacy"] * args.legacy)], check=True
        )
        size = (root / "a" / NAME).stat().st_size
        print(f"built 3 checkpoints of {size / MiB:.0f} MiB in {time.perf_counter() - t0:.1f}s under {root}")
        print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
        header = f"{'case':<22}{'seconds':>9}{'GB/s':>8}{'RSS MiB':>10}  status"
        print(header + "\n" + "-" * len(header))
        rows = []
        for case, label in (("same", "identical (2 dirs)"), ("one", "1 element differs")):
            best = None
            for _ in range(args.repeat):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(root / "a" / NAME), str(root / case / NAME)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                got = json.loads(out)
                if best is None or got["seconds"] < best["seconds"]:
                    best = got
            assert best is not None
            rate = size / best["seconds"] / 1e9
            rss = (best["rss_increase_kib"] or 0) / 1024
            print(f"{label:<22}{best['seconds']:>9.3f}{rate:>8.2f}{rss:>10.1f}  {best['status']}")
            rows.append((rate, rss, best["status"]))
        ok_rate = min(r for r, _, _ in rows) >= 1.0
        ok_rss = max(m for _, m, _ in rows) < size / MiB / 4
        ok_verdicts = [s for _, _, s in rows] == ["identical", "different"]
        print(
            f"\ntargets: >= 1 GB/s {'met' if ok_rate else 'MISSED'}; RSS increase < {size / MiB / 4:.0f} MiB "
            f"{'met' if ok_rss else 'MISSED'}; verdicts {'right' if ok_verdicts else 'WRONG'}"
        )
        return 0 if ok_rate and ok_rss and ok_verdicts else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
