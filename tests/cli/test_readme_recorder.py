"""The README's Recorder recipe runs as written: its Hydra app, taken from README.md itself (no copy kept
here), run twice in fresh processes, leaves two identical run directories with a trace."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from twinrun import compare_runs

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_python_block(must_contain: str) -> str:
    """The one ```python block of README.md that holds ``must_contain``."""
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
    [block] = [b for b in blocks if must_contain in b]
    return block


def test_the_recorder_recipe_runs_twice_and_the_runs_are_identical(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(readme_python_block("Recorder(run_dir, model, optimizer, config=cfg)"))
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    runs = [tmp_path / "runs" / name for name in ("a", "b")]
    processes = [  # both at once: each is mostly `import torch`
        subprocess.Popen(
            [sys.executable, str(script), f"hydra.run.dir={run}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for run in runs
    ]
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    report = compare_runs(*runs)
    assert report.exit_code == 0, report
    for name in ("weights.safetensors", "trace.jsonl", "env.json", "resolved_config.yaml"):
        assert (runs[0] / name).is_file(), name
    assert len((runs[0] / "trace.jsonl").read_text().splitlines()) >= 16  # 2 epochs x 8 batches
    assert not (runs[0] / ".twinrun.lock").exists()
    # Negative control: one byte of the second run's weights changed, and the same comparison sees it.
    changed = tmp_path / "runs" / "changed"
    shutil.copytree(runs[1], changed)
    weights = bytearray((changed / "weights.safetensors").read_bytes())
    weights[-1] ^= 1
    (changed / "weights.safetensors").write_bytes(bytes(weights))
    assert compare_runs(runs[0], changed).exit_code == 1
