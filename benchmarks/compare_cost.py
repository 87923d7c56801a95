"""Figure 4: ``twinrun compare`` throughput and peak memory, measured by ``bench_compare.py``.

The parent starts ``python -m benchmarks.compare_cost --size-mb N`` as a child: it never imports torch,
so the processes ``bench_compare`` forks (one per measurement) do not inherit the parent's large
resident set in their peak-RSS figures. The child builds the runs with ``bench_compare``'s own builder
and measures with its ``measure`` (best of ``--repeat``), then prints JSON.
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

from benchmarks.common import Context
from benchmarks.table import Row

MiB = 1 << 20
RATE_TARGET = 1.0  # GB/s, bench_compare.py's target for compare_runs
APPROACHES = {"twinrun": "compare_runs", "cli": "CLI", "course": "course torch.load+allclose"}
CASES = {"same": "identical", "one": "1 element differs"}


def measure_all(size_mb: int, tensor_mb: int, repeat: int, where: Path | None) -> dict[str, object]:
    """Build the runs and measure every approach on every case; runs deleted afterwards."""
    from benchmarks import bench_compare

    root = Path(tempfile.mkdtemp(prefix="twinrun-bench-compare-", dir=where))
    try:
        start = time.perf_counter()
        build = [sys.executable, bench_compare.__file__, "--build", str(root), "--size-mb", str(size_mb)]
        subprocess.run([*build, "--tensor-mb", str(tensor_mb)], check=True, stdout=subprocess.DEVNULL)
        built = time.perf_counter() - start
        file_bytes = (root / "a" / "weights.safetensors").stat().st_size
        results = []
        for case in CASES:
            for approach in APPROACHES:
                row = bench_compare.measure(approach, root / "a", root / case, repeat)
                results.append({"case": case, "approach": approach, **row})
        return {"file_bytes": file_bytes, "build_seconds": built, "results": results}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(ctx: Context) -> list[Row]:
    mb, repeat = ctx.sizes.compare_mb, ctx.sizes.compare_repeat
    tensor_mb = min(64, mb)
    command = [sys.executable, "-m", "benchmarks.compare_cost", "--size-mb", str(mb)]
    command += ["--tensor-mb", str(tensor_mb), "--repeat", str(repeat), "--dir", str(ctx.scratch)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ctx.repo_root).stdout
    got = json.loads(out.strip().splitlines()[-1])
    file_mib = got["file_bytes"] / MiB
    ctx.notes.append(
        f"compare: two {file_mib:.0f} MiB weights files per pair (built in {got['build_seconds']:.1f}s), "
        "read from the page cache; GB/s = one file's size / wall seconds; best of "
        f"{repeat}; RSS = peak-RSS increase of a child (CLI: the whole process's peak)."
    )
    if mb < 256:
        ctx.notes.append(
            f"compare: at {mb} MiB the RSS target (< 1/4 of the file) is below the comparer's fixed "
            "working set (libraries, buffers); it is meaningful at the full size (--compare-mb 1024)."
        )
    cmd = (
        f"{ctx.command('compare', f' --compare-mb {mb}')} "
        f"(= `python benchmarks/bench_compare.py --size-mb {mb} --tensor-mb {tensor_mb}`)"
    )
    rows: list[Row] = []
    for case, case_label in CASES.items():
        for approach, approach_label in APPROACHES.items():
            r = next(x for x in got["results"] if x["case"] == case and x["approach"] == approach)
            rate = got["file_bytes"] / r["seconds"] / 1e9
            rss_mib = r["rss_kib"] / 1024
            ours = approach == "twinrun"
            rows.append(
                Row(
                    f"compare {case_label}, {approach_label} ({file_mib:.0f} MiB)",
                    f"{rate:.2f} GB/s ({r['seconds']:.3f} s); RSS {rss_mib:.0f} MiB; {r['verdict']}",
                    f">= {RATE_TARGET:g} GB/s, RSS < {file_mib / 4:.0f} MiB" if ours else "—",
                    (rate >= RATE_TARGET and rss_mib < file_mib / 4) if ours else None,
                    cmd,
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="child of `python -m benchmarks --only compare`")
    parser.add_argument("--size-mb", type=int, required=True)
    parser.add_argument("--tensor-mb", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args(argv)
    print(json.dumps(measure_all(args.size_mb, args.tensor_mb, args.repeat, args.dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
