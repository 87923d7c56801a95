"""Benchmark ``twinrun compare`` on large weights against the course tester's approach.

    python benchmarks/bench_compare.py [--size-mb 1024] [--tensor-mb 64] [--repeat 1] [--dir DIR]

Builds two runs whose ``weights.safetensors`` hold ``--size-mb`` MiB of float32 tensors (at most
``--tensor-mb`` each), a bitwise-identical twin and a twin that differs in one element, plus the same
state dicts saved course-style with ``torch.save`` (``trained_model.pt``, in a sibling directory).
Each measurement runs in a fresh child process, so that its peak RSS (``ru_maxrss``) is its own:

* ``twinrun compare_runs``  -- ``twinrun.compare.runs.compare_runs(A, B)`` inside the child;
* ``twinrun CLI``           -- ``python -m twinrun compare A B --json`` end to end (start-up included;
  RSS there is the whole process's peak, not an increase);
* ``course torch.load``     -- ``torch.load`` both files fully, ``zip`` the tensors, ``torch.allclose``.

Throughput is the size of ONE weights file divided by the wall time (both files are read, so the bytes
moved are twice that). The files were just written, so they are read from the page cache: this measures
the comparer, not the disk. Targets: >= 1 GB/s, and peak RSS increase < 1/4 of the file size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MiB = 1 << 20
COURSE = "trained_model.pt"


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; Linux >= 4.0."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _approach(approach: str, a: Path, b: Path) -> str:
    import torch

    from twinrun.compare.runs import compare_runs

    if approach == "twinrun":
        return compare_runs(a, b).verdict
    # The course's reproducibility_tester.py: load everything, zip the parameters, allclose.
    sd_a = torch.load(_course(a) / COURSE, weights_only=True)
    sd_b = torch.load(_course(b) / COURSE, weights_only=True)
    same = all(torch.allclose(x, y) for x, y in zip(sd_a.values(), sd_b.values(), strict=True))
    return "identical" if same else "different"


def child(approach: str, a: str, b: str) -> None:
    """Run one approach; print seconds, RSS increase and verdict as JSON.

    A warm-up on two tiny runs first loads every library page and code path the approach touches, so
    that the RSS increase measured afterwards is the memory the comparison itself needs.
    """
    warm = Path(a).parent
    _approach(approach, warm / "warm_a", warm / "warm_b")
    # VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec and can be the forking parent's peak.
    exact = _reset_peak_rss() and _status_kib("VmHWM") is not None
    baseline = (_status_kib("VmRSS") if exact else None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    verdict = _approach(approach, Path(a), Path(b))
    seconds = time.perf_counter() - start
    peak = (_status_kib("VmHWM") if exact else None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "rss_increase_kib": peak - baseline, "verdict": verdict}))


def _tensors(size_mb: float, tensor_mb: int, seed: int) -> dict[str, object]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    tensors, left, i = {}, int(size_mb * MiB), 0
    while left > 0:
        nbytes = min(tensor_mb * MiB, left)
        tensors[f"layer{i:03d}.weight"] = torch.randn(nbytes // 4, generator=generator)
        left, i = left - nbytes, i + 1
    return tensors


def _course(run: Path) -> Path:
    """Where the course-style copy of a run's weights lies: beside the run, not in it, since twinrun
    compares every tensor file a run holds and would otherwise read both copies."""
    return run.with_name(run.name + "_course")


def _write(path: Path, tensors: dict[str, object]) -> None:
    import torch

    from twinrun.record import runs

    path.mkdir(parents=True)
    runs.write_weights(path, tensors)
    _course(path).mkdir()
    torch.save(tensors, _course(path) / COURSE)


def build(root: Path, size_mb: int, tensor_mb: int, all_differ: bool) -> dict[str, Path]:
    """Runs a, same (identical), one (one element differs), all (other seed), plus a tiny warm-up pair."""
    import torch

    tensors = _tensors(size_mb, tensor_mb, seed=0)
    dirs = {name: root / name for name in ("a", "same", "one", "all")}
    _write(dirs["a"], tensors)
    shutil.copytree(dirs["a"], dirs["same"])
    shutil.copytree(_course(dirs["a"]), _course(dirs["same"]))
    last = list(tensors)[-1]
    tensors[last].view(torch.int32)[-1] ^= 1  # type: ignore[attr-defined]  # one element, 1 ULP, at the end
    _write(dirs["one"], tensors)
    del tensors
    if all_differ:
        _write(dirs["all"], _tensors(size_mb, tensor_mb, seed=1))
    else:
        del dirs["all"]
    warm = _tensors(1, 1, seed=0)
    _write(root / "warm_a", warm)
    warm["layer000.weight"][0] += 1  # type: ignore[index]
    _write(root / "warm_b", warm)
    return dirs


def _run_child(command: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB (of that child alone) and stdout of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:  # its traceback went to stderr; an empty stdout would only confuse json
        raise subprocess.CalledProcessError(proc.returncode, command)
    return time.perf_counter() - start, usage.ru_maxrss, out


def measure(approach: str, a: Path, b: Path, repeat: int) -> dict[str, object]:
    """Best of ``repeat`` runs of one approach on one pair of runs."""
    best: dict[str, object] | None = None
    for _ in range(repeat):
        if approach == "cli":
            seconds, peak_kib, out = _run_child(
                [sys.executable, "-m", "twinrun", "compare", str(a), str(b), "--json"], ok=(0, 1)
            )
            row: dict[str, object] = {
                "seconds": seconds,
                "rss_kib": peak_kib,
                "verdict": json.loads(out)["verdict"],
            }
        else:
            _, _, out = _run_child([sys.executable, __file__, "--child", approach, str(a), str(b)])
            got = json.loads(out)
            row = {"seconds": got["seconds"], "rss_kib": got["rss_increase_kib"], "verdict": got["verdict"]}
        if best is None or row["seconds"] < best["seconds"]:  # type: ignore[operator]
            best = row
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="MiB of weights per file (default 1024)")
    parser.add_argument("--tensor-mb", type=int, default=64, help="largest tensor in MiB (default 64)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is shown")
    parser.add_argument("--dir", type=Path, help="where to build the files (default: a temp directory)")
    parser.add_argument(
        "--all-differ", action="store_true", help="also compare against weights of another seed (all differ)"
    )
    parser.add_argument("--child", nargs=3, metavar=("APPROACH", "A", "B"), help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.build:
        build(args.build, args.size_mb, args.tensor_mb, args.all_differ)
        return 0
    root = Path(tempfile.mkdtemp(prefix="twinrun-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        # Built in a child: this process stays small (no torch), so the children it forks inherit
        # no large peak RSS.
        command = [sys.executable, __file__, "--build", str(root), "--size-mb", str(args.size_mb)]
        command += ["--tensor-mb", str(args.tensor_mb), *(["--all-differ"] if args.all_differ else [])]
        subprocess.run(command, check=True)
        dirs = {name: root / name for name in ("a", "same", "one", "all") if (root / name).is_dir()}
        file_bytes = (dirs["a"] / "weights.safetensors").stat().st_size
        built = time.perf_counter() - t0
        print(f"built {file_bytes / MiB:.0f} MiB of weights per run in {built:.1f}s under {root}")
        print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
        approaches = {
            "twinrun compare_runs": ("twinrun", "compare_runs(A, B) in a child process"),
            "twinrun CLI": ("cli", "python -m twinrun compare A B --json (RSS: whole process)"),
            "course torch.load": ("course", "torch.load x2 + zip + torch.allclose"),
        }
        header = f"{'case':<16}{'approach':<22}{'seconds':>9}{'GB/s':>8}{'RSS MiB':>10}  verdict"
        print(header + "\n" + "-" * len(header))
        results = []
        names = {"same": "identical", "one": "1 elem differs", "all": "all differ"}
        for case in [c for c in names if c in dirs]:
            for label, (approach, _) in approaches.items():
                row = measure(approach, dirs["a"], dirs[case], args.repeat)
                rate = file_bytes / row["seconds"] / 1e9  # type: ignore[operator]
                rss = row["rss_kib"] / 1024  # type: ignore[operator]
                name = names[case]
                print(
                    f"{name:<16}{label:<22}{row['seconds']:>9.3f}{rate:>8.2f}{rss:>10.1f}  {row['verdict']}"
                )
                results.append((case, label, rate, rss))
        print()
        for label, (_, what) in approaches.items():
            print(f"{label:<22}{what}")
        ours = [(r, m) for case, label, r, m in results if label == "twinrun compare_runs" and case != "all"]
        ok_rate = min(rate for rate, _ in ours) >= 1.0
        ok_rss = max(rss for _, rss in ours) < file_bytes / MiB / 4
        quarter = file_bytes / MiB / 4
        print(
            "\ntargets (compare_runs, identical and 1-element cases): "
            f">= 1 GB/s {'met' if ok_rate else 'MISSED'}; "
            f"RSS increase < {quarter:.0f} MiB {'met' if ok_rss else 'MISSED'}"
        )
        return 0 if ok_rate and ok_rss else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
