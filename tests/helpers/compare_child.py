"""Run ``twinrun compare A B`` for pairs of run directories in this process, watching what it does.

``python compare_child.py A1 B1 [A2 B2 ...]`` (or ``--serve``: pairs read from stdin) prints one JSON
line per pair: the exit code, how much the peak resident memory grew during the comparison (``VmHWM``
after resetting it, in KiB), the seconds (wall and CPU) it took, files opened outside the two runs and
Python's own code, and any command it started. A crash (SIGSEGV) ends the process: the parent sees
which pair was running from the ``start`` line printed before it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time

# Imported before the watch starts: reading twinrun's own code is not reading the runs.
import twinrun.cli
import twinrun.compare.judge.tensor_files
import twinrun.compare.read.numpy_file
import twinrun.compare.runs


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(f"{field}:"))


def main(argv: list[str]) -> None:
    allowed = [os.path.realpath(p) for p in (*sys.path, sys.prefix, sys.base_prefix) if p]
    allowed += ["/proc/", "/sys/", "/dev/", "/etc/localtime", "/usr/share/zoneinfo"]
    allowed.append(os.path.join(os.getcwd(), "pyproject.toml"))  # the user's settings, not the runs
    watch: dict[str, list[str]] = {"outside": [], "executed": []}
    roots: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], str | bytes):
            path = os.path.realpath(os.fsdecode(args[0]))
            if not any(path.startswith(p) for p in (*roots, *allowed)):
                watch["outside"].append(path)
        elif event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn"):
            watch["executed"].append(f"{event} {args[:1]!r}")

    sys.addaudithook(hook)
    if argv == ["--serve"]:  # pairs from stdin, one "A<TAB>B" line each, until it closes
        pairs = (line.rstrip("\n").split("\t") for line in sys.stdin)
    else:
        pairs = zip(argv[::2], argv[1::2], strict=True)
    for a, b in pairs:
        roots[:] = [os.path.realpath(a), os.path.realpath(b)]
        watch["outside"].clear()
        watch["executed"].clear()
        print(json.dumps({"start": [a, b]}), flush=True)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
        before = _status_kib("VmRSS")
        start, cpu = time.perf_counter(), time.process_time()
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = twinrun.cli.main(["compare", a, b])
        result = {
            "code": code,
            "grew_kib": _status_kib("VmHWM") - before,
            "seconds": round(time.perf_counter() - start, 3),
            "cpu_seconds": round(time.process_time() - cpu, 3),  # what the bound checks: load-independent
            "stderr": err.getvalue(),
            **watch,
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
