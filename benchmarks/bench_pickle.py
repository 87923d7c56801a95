"""How fast twinrun compares the non-tensor values of two torch files (pickle leaves per second).

    python benchmarks/bench_pickle.py [--leaves N] [--repeat R]

Builds two identical torch.save-format zips (no torch needed) whose ``data.pkl`` holds ``N`` leaves in
the shape optimizer-like state takes (a list of small dicts: a step, a float, a name, a flag), then
times ``compare_tensor_files`` on them (best of ``R``, in CPU seconds of this process, so that the
figure holds on a loaded machine) and reports leaves per second and the peak resident-memory increase.
Each part is timed too: the opcode walk that bounds nesting (``pickle_bounds``), the inert unpickling,
and the flattening into named parts. (Each dict is a value of its own too: N/4 more leaves.)
"""

from __future__ import annotations

import argparse
import io
import pickle
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from twinrun.compare.judge.tensor_files import compare_tensor_files
from twinrun.compare.read.object_tree import flatten
from twinrun.compare.read.pickle_bounds import check_depth
from twinrun.compare.read.torch_pickle import InertUnpickler

PER_ENTRY = 4  # leaves of one entry below


def build(path: Path, leaves: int) -> bytes:
    entries = [
        {"step": i, "lr": 1e-3 * i, "name": f"param{i}", "frozen": i % 2 == 0}
        for i in range(leaves // PER_ENTRY)
    ]
    data = pickle.dumps({"state": entries}, protocol=2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("f/data.pkl", data)
        archive.writestr("f/byteorder", "little")
        archive.writestr("f/version", "3\n")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="twinrun-bench-pickle-") as root:
        a, b = Path(root) / "a.pt", Path(root) / "b.pt"
        data = build(a, args.leaves)
        build(b, args.leaves)
        start = time.process_time()
        check_depth(io.BytesIO(data))
        walked = time.process_time() - start
        start = time.process_time()
        obj = InertUnpickler(io.BytesIO(data), {}).load()
        unpickled = time.process_time() - start
        start = time.process_time()
        flatten(obj)
        flattened = time.process_time() - start
        del obj
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        best = float("inf")
        for _ in range(args.repeat):
            start = time.process_time()
            sec = compare_tensor_files(a, b, label="f.pt")
            best = min(best, time.process_time() - start)
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert sec.status == "identical", sec.summary
    print(
        f"{sec.leaves_compared} leaves per file ({len(data) / 1e6:.1f} MB of pickle): compare "
        f"{best:.2f} s = {sec.leaves_compared / best / 1e6:.2f} M leaves/s (both files); per file: "
        f"opcode walk {walked:.2f} s, unpickle {unpickled:.2f} s, flatten {flattened:.2f} s; "
        f"peak RSS +{grew:.0f} MiB"
    )


if __name__ == "__main__":
    main()
