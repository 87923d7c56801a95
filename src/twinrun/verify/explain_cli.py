"""``twinrun explain RUN_A RUN_B`` and ``twinrun verify --explain``: the command-line side of
:mod:`twinrun.verify.explain`.

``twinrun explain`` finds what made each run in Hydra's own record (``.hydra/overrides.yaml``, and the app
from ``.hydra/hydra.yaml``'s job name for twinrun's trainers, else ``--app``). The recorded overrides are
untrusted input: one that names code (:mod:`twinrun.verify.trust`) is refused unless ``--trust-run-dirs``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from twinrun.verify.apps import VerifyError

# Hydra job names of twinrun's own trainers -> their console scripts
JOB_APPS = {"vae_mnist": "vae-mnist", "mnist_classifier": "mnist-classifier"}
COMPUTATION = "computation"
_MAX_RECORD = 1_000_000  # bytes of one .hydra/*.yaml


def add_parser(subparsers: Any) -> None:
    """Register ``twinrun explain`` (handler: :func:`run_explain`)."""
    p = subparsers.add_parser(
        "explain",
        help="name the first op that differs at the step where two runs part on computation",
        description="Replay the step where RUN_A and RUN_B part on computation, in each run's own "
        "command (from .hydra/), from its nearest checkpoint before that step, recording every aten op; "
        "name the first op whose output differs. Exit 0 when an op is named or the runs are identical, "
        "1 when the replays cannot answer, 2 for unusable input.",
    )
    p.add_argument("run_a", metavar="RUN_A", help="first run directory")
    p.add_argument("run_b", metavar="RUN_B", help="second run directory")
    p.add_argument("--app", help="the app that made both runs (default: from .hydra/hydra.yaml's job name)")
    p.add_argument("--step", type=int, help="replay this step (default: the first divergent step)")
    p.add_argument("--workdir", metavar="DIR", help="where the replays go (default: a new temp directory)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop a replay that runs longer")
    p.add_argument("--json", action="store_true", help="print a machine-readable JSON result")
    p.add_argument(
        "--trust-run-dirs",
        action="store_true",
        help="replay even recorded overrides that name code (_target_, hydra.*, resolvers): "
        "runs code the run directories name",
    )
    p.set_defaults(handler=run_explain)


def _hydra_record(run: Path) -> tuple[str | None, list[str]]:
    """(job name, task overrides) from a run's ``.hydra/``; bounded YAML reading of small files."""
    import yaml

    def load(name: str) -> Any:
        path = run / ".hydra" / name
        try:
            if not path.is_file():  # a FIFO would block the read, a directory fail it
                raise FileNotFoundError(2, "not a regular file")
            with path.open("rb") as handle:
                data = handle.read(_MAX_RECORD + 1)  # bounded: the record is a few lines
        except OSError as exc:
            raise VerifyError(
                f"{path}: cannot read ({exc.strerror}); twinrun explain needs runs launched by Hydra"
            ) from None
        if len(data) > _MAX_RECORD:
            raise VerifyError(f"{path}: too large for a Hydra record")
        text = data.decode("utf-8", errors="replace")
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise VerifyError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None

    overrides = load("overrides.yaml") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise VerifyError(f"{run / '.hydra' / 'overrides.yaml'}: not a list of overrides")
    hydra = load("hydra.yaml")
    job = hydra.get("hydra", {}).get("job", {}).get("name") if isinstance(hydra, dict) else None
    return (job if isinstance(job, str) else None), overrides


def explain_step(report: Any, step: int | None) -> tuple[int | None, str | None]:
    """The step to replay and, when there is none, why (identical runs, another cause)."""
    if step is not None:
        return step, None
    divergence = report.divergence
    if divergence is None:
        if report.exit_code == 0:
            return None, "the runs are identical: nothing to explain"
        return None, "the runs have no trace to find the divergent step in; give --step"
    if divergence.cause != COMPUTATION:
        return None, (
            f"the runs part at step {divergence.step} on {divergence.cause}, not on computation: "
            "the trace already names the cause, no op to replay"
        )
    return int(divergence.step), None


def run_explain(args: argparse.Namespace) -> int:
    from twinrun.compare.runs import compare_runs
    from twinrun.verify.apps import new_workdir
    from twinrun.verify.explain import command_replayer, explain_pair
    from twinrun.verify.resolve import resolve_app
    from twinrun.verify.trust import refuse_untrusted_overrides

    run_a, run_b = Path(args.run_a), Path(args.run_b)
    # The recorded overrides are data from the run directory: they must not choose code. Refused before
    # anything else reads the runs, so a refusal never depends on what the comparison makes of them.
    (job_a, overrides_a), (job_b, overrides_b) = _hydra_record(run_a), _hydra_record(run_b)
    for run, recorded in ((run_a, overrides_a), (run_b, overrides_b)):
        refuse_untrusted_overrides(
            recorded, trusted=args.trust_run_dirs, source=str(run / ".hydra" / "overrides.yaml")
        )
    report = compare_runs(run_a, run_b)
    step, why = explain_step(report, args.step)
    if step is None:
        sys.stdout.write(json.dumps({"step": None, "summary": why}) + "\n" if args.json else f"{why}\n")
        return 0 if report.exit_code == 0 else 1
    app = args.app or JOB_APPS.get(job_a or "")
    if app is None:
        raise VerifyError(f"cannot tell which app made {run_a} (Hydra job {job_a!r}); give --app APP")
    if not args.app and job_a != job_b:
        raise VerifyError(f"{run_a} and {run_b} were made by different apps ({job_a}, {job_b}); give --app")
    workdir = Path(args.workdir) if args.workdir else new_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    replay = command_replayer(resolve_app(app), [overrides_a, overrides_b], [1, 2], workdir, args.timeout)
    result = explain_pair(run_a, run_b, step, replay)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write("twinrun explain\n" + "".join(f"  {line}\n" for line in result.lines()))
    sys.stderr.write(f"replays kept in {workdir}\n")
    return 0 if result.ops is not None and result.ops.found else 1


def explain_verified(result: Any, overrides: list[str], timeout: float | None) -> Any:
    """``verify --explain``: the explanation of the pair shown in full (None: nothing to explain)."""
    from twinrun.verify.explain import command_replayer, explain_pair

    report = result.report
    step, why = explain_step(report, None)
    if step is None:
        return why
    pair = next(p for p, r in result.pairs.items() if r is report)
    runs = {run.index: run for run in result.runs}
    twins = [runs[pair[0]], runs[pair[1]]]
    replay = command_replayer(
        result.app, [overrides, overrides], [t.index for t in twins], result.workdir, timeout
    )
    return explain_pair(twins[0].run_dir, twins[1].run_dir, step, replay)
