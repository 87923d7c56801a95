"""``python -m benchmarks.audit_detection``: what ``twinrun audit`` catches, and what it costs.

A reference run of the classifier (``--steps`` steps, a checkpoint every ``--every``) is trained clean
and once per planted fault (:mod:`benchmarks.audit_faults_app`). Then:

- cost: ``twinrun audit`` of the clean run with ``--segments`` segments of ``--k`` steps (one replay at a
  time, process start-up included), as a fraction of the run's own time (wall and CPU); its verdict;
- detection: every candidate segment of each faulty run is replayed once; from which of them differ,
  the probability that an audit of N segments (the first and the last always, N-2 of the others drawn
  at random) catches the fault follows exactly, for every N.

Persistent faults are in the audit's replays too (the code is still wrong); the single bad step
(``rng_once``) happened in the run only. Writes a table to stdout and ``--output`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from math import comb
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "benchmarks" / "audit_faults_app.py"
FAULT_ENV = "TWINRUN_BENCH_FAULT"


def faults(steps: int, every: int, epochs: int) -> list[tuple[str, str, bool]]:
    """(label, spec, persistent): planted in the run's second half, one just after a checkpoint."""
    half_epoch = epochs // 2 + 1
    mid = (steps // every // 2) * every  # a checkpoint in the middle of the run
    return [
        (f"noise from step {mid + every // 2}", f"noise:{mid + every // 2}", True),
        (f"extra RNG draw at step {mid + 2} only", f"rng_once:{mid + 2}", False),
        (f"data order reshuffled from epoch {half_epoch}", f"reshuffle:{half_epoch}", True),
        (f"noise in DataLoader workers from epoch {half_epoch}", f"workers:{half_epoch}", True),
    ]


def _timed(argv: list[str], env: dict[str, str], out: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the process and everything it waited for, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with out.open("wb") as handle:
        code = subprocess.run(argv, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, code


def _env(fault: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
    return {**env, FAULT_ENV: fault} if fault else env


def train(run_dir: Path, overrides: list[str], fault: str | None) -> tuple[float, float]:
    argv = [sys.executable, str(APP), *overrides, f"hydra.run.dir={run_dir}"]
    wall, cpu, code = _timed(argv, _env(fault), run_dir.with_suffix(".out"))
    if code:
        raise SystemExit(f"training {run_dir.name} failed; see {run_dir.with_suffix('.out')}")
    return wall, cpu


def audit(
    run_dir: Path, workdir: Path, segments: int, k: int, jobs: int, fault: str | None
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "twinrun", "audit", str(run_dir), "--app", str(APP), "--json"]
    argv += ["--segments", str(segments), "--steps", str(k), "--jobs", str(jobs), "--workdir", str(workdir)]
    out = workdir.with_suffix(".json")
    wall, cpu, code = _timed(argv, _env(fault), out)
    if code not in (0, 1):
        raise SystemExit(f"audit of {run_dir.name} failed (exit {code}); see {out}")
    text = out.read_text()
    report = json.loads(text[text.index("{") : text.rindex("}") + 1])
    return {**report, "wall_s": wall, "cpu_s": cpu}


def catch_probability(caught: list[bool], n: int) -> float:
    """P(an audit of n segments catches it): the first and the last always (n = 1: the first only),
    n-2 of the middle ones drawn at random (``choose_segments``)."""
    if n >= len(caught):
        return float(any(caught))
    if caught[0] or (n > 1 and caught[-1]):
        return 1.0
    if n <= 2:
        return 0.0
    middle = caught[1:-1]
    return 1.0 - comb(middle.count(False), n - 2) / comb(len(middle), n - 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.audit_detection", description=__doc__)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--every", type=int, default=200, help="checkpoint every N steps")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--segments", type=int, default=5)
    p.add_argument("--k", type=int, default=5, help="steps per segment")
    p.add_argument("--jobs", type=int, default=2, help="replays at a time for the detection audits")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/twinrun-audit-bench"))
    p.add_argument("--model", default="cnn_small", help="the classifier's model option")
    p.add_argument("--part", choices=("all", "cost", "detect"), default="all")
    p.add_argument("--output", type=Path, help="write the results as JSON")
    args = p.parse_args(argv)
    per_epoch = args.steps // args.epochs
    overrides = [
        "data=synthetic",
        f"data.train_samples={per_epoch * args.batch}",
        "data.test_samples=64",
        "device=cpu",
        "seed=0",
        f"model={args.model}",
        f"training.epochs={args.epochs}",
        f"training.batch_size={args.batch}",
        f"checkpoint.every_n_steps={args.every}",
        "checkpoint.every_epoch=false",
        "checkpoint.keep_last=null",
    ]
    args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(args.workdir)
    results: dict[str, Any] = {"overrides": overrides, "faults": []}
    if args.part != "detect":
        _cost(args, overrides, work, results)
    if args.part != "cost":
        _detect(args, overrides, work, results)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _cost(args: argparse.Namespace, overrides: list[str], work: Path, results: dict[str, Any]) -> None:
    wall, cpu = train(work / "clean", overrides, None)
    results["run"] = {"wall_s": wall, "cpu_s": cpu, "steps": args.steps}
    print(f"clean run: {args.steps} steps in {wall:.1f}s wall, {cpu:.1f}s CPU", flush=True)
    cost = audit(work / "clean", work / "audit-clean", args.segments, args.k, 1, None)
    results["audit"] = {k: cost[k] for k in ("verdict", "wall_s", "cpu_s", "fraction_replayed")}
    print(
        f"audit ({args.segments} segments x {args.k} steps, one at a time): {cost['verdict']}; "
        f"{cost['wall_s']:.1f}s wall = {100 * cost['wall_s'] / wall:.1f}% of the run, "
        f"{cost['cpu_s']:.1f}s CPU = {100 * cost['cpu_s'] / cpu:.1f}%",
        flush=True,
    )


def _detect(args: argparse.Namespace, overrides: list[str], work: Path, results: dict[str, Any]) -> None:
    ns = list(range(1, 11))
    print("\nfault | caught by segments (start step) | " + " | ".join(f"P(N={n})" for n in ns))
    for label, spec, persistent in faults(args.steps, args.every, args.epochs):
        name = spec.replace(":", "-")
        train(work / name, overrides, spec)
        every = audit(
            work / name, work / f"audit-{name}", 1000, args.k, args.jobs, spec if persistent else None
        )
        caught = [not s["reproduced"] for s in every["segments"]]
        starts = [s["start"] for s in every["segments"]]
        chance = {n: catch_probability(caught, n) for n in ns}
        results["faults"].append(
            {
                "fault": label,
                "spec": spec,
                "persistent": persistent,
                "caught_from": [s for s, c in zip(starts, caught, strict=True) if c],
                "segments": starts,
                "p_catch": chance,
                "causes": sorted({s["divergence"]["cause"] for s in every["segments"] if s["divergence"]}),
            }
        )
        hits = ",".join(str(s) for s, c in zip(starts, caught, strict=True) if c) or "none"
        print(f"{label} | {hits} | " + " | ".join(f"{chance[n]:.2f}" for n in ns), flush=True)


if __name__ == "__main__":
    sys.exit(main())
