"""Running ``twinrun audit``'s replays: what the run directory says, fresh processes, in parallel.

Each replay runs the run's own app (the reference trainers by their Hydra job name, any other app only
as ``--app`` names it: a run directory never chooses code), with the overrides Hydra recorded (plain ones
only, :func:`twinrun.verify.trust.refuse_untrusted_overrides`) and the recorded ``PYTHONHASHSEED``, into
``<workdir>/segment-<c>``. The reference trainers resume and stop through ``training.resume_from`` and
``training.max_steps``; Recorder loops and Lightning apps through :mod:`twinrun.record.replay`'s
environment variables.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinrun.compare.read.run_reader import RunDir, open_run, read_json, read_jsonl, read_overrides, read_yaml
from twinrun.record.replay import RESUME_ENV, STOP_ENV
from twinrun.record.runs import ENV, TRACE
from twinrun.verify import processes
from twinrun.verify.audit import (
    LIGHTNING,
    RECORDER,
    TRAINER,
    AuditResult,
    Segment,
    SegmentResult,
    candidate_segments,
    checkpoint_steps,
    choose_segments,
    segment_divergence,
)
from twinrun.verify.resolve import AppCommand, VerifyError, hydra_quote, resolve_app
from twinrun.verify.trust import refuse_untrusted_overrides

# Hydra job names of twinrun's own trainers -> their console scripts (as twinrun explain)
JOB_APPS = {"vae_mnist": "vae-mnist", "mnist_classifier": "mnist-classifier"}
# Keys a replay sets itself: the run's own value for them is dropped (Hydra refuses a key given twice).
_REPLAY_KEYS = {"explain_step", "training.max_steps", "training.resume_from"}
_TAIL = 12


@dataclass
class AuditedRun:
    """What an audit needs from a run directory."""

    run: RunDir
    app: AppCommand
    kind: str
    overrides: list[str]
    hash_seed: str | None  # None: the run had none set (random), and so has the replay
    rows: list[dict[str, Any]]
    checkpoints: dict[int, Path]

    @property
    def total_steps(self) -> int:
        steps = [r["step"] for r in self.rows if isinstance(r.get("step"), int)]
        return max(steps, default=0)


def _job_name(run: RunDir) -> str | None:
    if not run.has(".hydra/hydra.yaml"):
        return None
    tree = read_yaml(run, ".hydra/hydra.yaml")
    job = tree.get("hydra", {}).get("job", {}).get("name") if isinstance(tree, dict) else None
    return job if isinstance(job, str) else None


def _kind(run: RunDir, job: str | None) -> str:
    """trainer (twinrun's fit: its Hydra config has training.resume_from), recorder, or lightning."""
    if job in JOB_APPS:
        return TRAINER
    if run.has(".hydra/config.yaml"):
        tree = read_yaml(run, ".hydra/config.yaml")
        training = tree.get("training") if isinstance(tree, dict) else None
        if isinstance(training, dict) and "resume_from" in training:
            return TRAINER
    return RECORDER if any((run.path / "checkpoints").glob("step-*.pt")) else LIGHTNING


def read_run(path: str | Path, app: str | None, *, trusted: bool) -> AuditedRun:
    """The audited run: its app, kind, plain overrides, hash seed, trace rows and checkpoints."""
    run = open_run(path)
    if not run.has(TRACE):
        raise VerifyError(
            f"{run.show(TRACE)} does not exist; twinrun audit needs a run that recorded a trace"
        )
    job = _job_name(run)
    name = app or JOB_APPS.get(job or "")
    if name is None:
        raise VerifyError(
            f"cannot tell which app made {run.shown} (Hydra job {job!r}); give --app APP (the app is never "
            "taken from the run directory)"
        )
    overrides = read_overrides(run)
    if overrides is None:
        raise VerifyError(
            f"{run.show('.hydra/overrides.yaml')} does not exist; twinrun audit needs a Hydra run"
        )
    refuse_untrusted_overrides(overrides, trusted=trusted, source=run.show(".hydra/overrides.yaml"))
    own = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in _REPLAY_KEYS]
    env = read_json(run, ENV) if run.has(ENV) else {}
    seed = (env.get("env_vars") or {}).get("PYTHONHASHSEED") if isinstance(env, dict) else None
    kind = _kind(run, job)
    found = AuditedRun(
        run, resolve_app(name), kind, own, seed if isinstance(seed, str) else None, read_jsonl(run, TRACE), {}
    )
    found.checkpoints = checkpoint_steps(run.path, kind)
    if not any(0 < step < found.total_steps for step in found.checkpoints):
        where = "checkpoints/step-N.pt" if kind != LIGHTNING else "a Lightning .ckpt named with its step"
        raise VerifyError(
            f"{run.shown} cannot be audited: it kept no checkpoint before its last step ({where}); "
            "keep checkpoints at known steps (see docs/audit.md)"
        )
    return found


def replay_settings(kind: str, segment: Segment) -> tuple[list[str], dict[str, str]]:
    """(extra overrides, extra environment) telling the app to resume at the segment and stop after it."""
    if kind == TRAINER:
        extra = [f"training.max_steps={segment.stop}"]
        if segment.checkpoint is not None:
            extra.append(f"training.resume_from={hydra_quote(str(segment.checkpoint))}")
        return extra, {STOP_ENV: str(segment.stop)}  # the trainer then draws no pictures
    env = {STOP_ENV: str(segment.stop)}
    if segment.checkpoint is not None:
        env[RESUME_ENV] = str(segment.checkpoint)
    return [], env


def replay_env(hash_seed: str | None, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (RESUME_ENV, STOP_ENV, "PYTHONHASHSEED")}
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_replay(
    audited: AuditedRun,
    overrides: Sequence[str],
    env: dict[str, str],
    run_dir: Path,
    timeout: float | None,
    started_procs: list[subprocess.Popen[bytes]],
) -> tuple[Path, float]:
    """One replay in a fresh process into ``run_dir``; (its output file, seconds). A failure raises
    :class:`VerifyError` with the replay's own last line (e.g. "this app cannot resume")."""
    output = run_dir.with_name(run_dir.name + ".out")
    argv = [*audited.app.argv, *audited.overrides, *overrides, f"hydra.run.dir={hydra_quote(str(run_dir))}"]
    began = time.perf_counter()
    with output.open("wb") as out:
        proc = processes.start(argv, out, replay_env(audited.hash_seed, env), None)
        started_procs.append(proc)
        finished = processes.wait(proc, run_dir.name, None, timeout)
        if not finished:
            processes.stop(proc)
    seconds = time.perf_counter() - began
    if not finished or proc.returncode != 0:
        lines = output.read_text(encoding="utf-8", errors="replace").splitlines()[-_TAIL:]
        reason = next((ln.strip() for ln in reversed(lines) if "cannot" in ln), None)
        what = f"timed out after {timeout:g}s" if not finished else f"failed with exit code {proc.returncode}"
        if reason is not None:
            raise VerifyError(f"the replay {run_dir.name} {what}: {reason}")
        raise VerifyError(
            f"the replay {run_dir.name} {what}; its output is in {output}\n  command: "
            f"{subprocess.list2cmdline(argv)}\n" + "\n".join(f"    {ln}" for ln in lines)
        )
    return output, seconds


def replay_segment(
    audited: AuditedRun, segment: Segment, workdir: Path, timeout: float | None, procs: list[Any]
) -> SegmentResult:
    run_dir = workdir / f"segment-{segment.start}"
    overrides, env = replay_settings(audited.kind, segment)
    output, seconds = run_replay(audited, overrides, env, run_dir, timeout, procs)
    replayed = read_jsonl(open_run(run_dir), TRACE) if (run_dir / TRACE).is_file() else []
    divergence = segment_divergence(audited.rows, replayed, segment)
    return SegmentResult(segment, run_dir, output, seconds, divergence)


def audit_run(
    audited: AuditedRun,
    *,
    segments: int,
    steps: int,
    seed: int,
    jobs: int,
    workdir: Path,
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> AuditResult:
    """Replay ``segments`` segments of ``steps`` steps each, ``jobs`` at a time, and compare them."""
    total = audited.total_steps
    chosen = choose_segments(candidate_segments(audited.checkpoints, total, steps), segments, seed)
    result = AuditResult(audited.run.path, audited.app.app, audited.kind, workdir, total, steps, seed)
    procs: list[subprocess.Popen[bytes]] = []
    with processes.forwarded_signals(), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(replay_segment, audited, s, workdir, timeout, procs) for s in chosen]
        try:
            for future in futures:
                done = future.result()
                result.segments.append(done)
                if progress is not None:
                    state = "reproduced" if done.reproduced else "DIFFERS"
                    progress(f"replay of {done.segment.label}: {state} in {done.seconds:.1f}s")
        except BaseException:  # a failed replay, Ctrl-C, SIGTERM: stop the others
            for future in futures:
                future.cancel()
            for proc in procs:
                if proc.poll() is None:
                    processes.stop(proc, grace=2.0)
            raise
    return result
