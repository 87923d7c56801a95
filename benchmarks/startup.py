"""Start-up time of the commands that should answer at once, as a ratio to ``python -c "import torch"``.

    python -m benchmarks.startup [--repeat N]

``vae-mnist --help``, ``vae-mnist --cfg job``, ``mnist-classifier --help`` and ``twinrun --help`` import
neither torch nor torchvision (target: under 1 s each). Every round runs all the commands and the torch
import once each, in a rotated order, from an empty directory; each command's ratio is taken within its
round, so load that drifts during the run moves numerator and denominator together.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import median, ratio_text, rotated
from benchmarks.table import Row, render

TARGET_S = 1.0
REFERENCE = ("python", "-c", "import torch")
COMMANDS = (
    ("vae-mnist", "--help"),
    ("vae-mnist", "data=synthetic", "--cfg", "job"),
    ("mnist-classifier", "--help"),
    ("twinrun", "--help"),
)
MODULES = {
    "vae-mnist": "twinrun.trainers.apps.vae_mnist",
    "mnist-classifier": "twinrun.trainers.apps.mnist_classifier",
    "twinrun": "twinrun",
}


def argv(command: Sequence[str]) -> list[str]:
    """The process to start: this interpreter for ``python``, the console script beside it, else ``-m``."""
    name, *args = command
    if name == "python":
        return [sys.executable, *args]
    script = Path(sys.executable).with_name(name)
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", MODULES[name], *args]


def timed(command: Sequence[str], cwd: Path) -> float:
    """Wall seconds of one run of ``command`` (it must exit 0)."""
    start = time.perf_counter()
    done = subprocess.run(argv(command), cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def measure(repeat: int) -> dict[tuple[str, ...], list[float]]:
    """Seconds per command, ``repeat`` rounds; one warm-up round first (file cache, .pyc files)."""
    every = [REFERENCE, *COMMANDS]
    times: dict[tuple[str, ...], list[float]] = {c: [] for c in every}
    with tempfile.TemporaryDirectory(prefix="twinrun-startup-") as scratch:
        for command in every:
            timed(command, Path(scratch))
        for rep in range(repeat):
            for command in rotated(every, rep):
                times[command].append(timed(command, Path(scratch)))
    return times


def rows(times: dict[tuple[str, ...], list[float]]) -> list[Row]:
    reference = times[REFERENCE]
    out = [Row(f"`{shlex.join(REFERENCE)}` (the reference)", f"{median(reference):.2f} s", command="")]
    for command in COMMANDS:
        seconds = times[command]
        ratios = [s / r for s, r in zip(seconds, reference, strict=True)]
        value = f"{median(seconds):.2f} s; {ratio_text(ratios)} of `import torch`"
        out.append(Row(f"`{shlex.join(command)}`", value, f"< {TARGET_S:.0f} s", median(seconds) < TARGET_S))
    command = f"`python -m benchmarks.startup --repeat {len(reference)}`"
    return [Row(r.figure, r.value, r.target, r.met, command) for r in out]


def main(argv_: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, metavar="N", help="rounds (default 5)")
    args = parser.parse_args(argv_)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    print(render(rows(measure(args.repeat))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
