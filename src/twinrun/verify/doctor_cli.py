"""``twinrun doctor``: the one command to run after installing.

It lists python, twinrun, torch, torchvision, Hydra, OmegaConf and numpy, imports torchvision for real
(the only proof that its operators load against this torch) and says whether torch and torchvision
belong together. Exit 0 when they do, 2 with one line saying what to reinstall when they do not.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twinrun.errors import TwinrunError


def add_parser(subparsers: Any) -> None:
    """Register ``twinrun doctor`` (handler: :func:`run_doctor`)."""
    p = subparsers.add_parser(
        "doctor",
        help="check the installation: torch, torchvision and Hydra versions, and whether they match",
        description="Print the installed python, twinrun, torch, torchvision, hydra-core, omegaconf and "
        "numpy versions, import torchvision, and say whether torch and torchvision match. Exit 0 when "
        "they do, 2 (with one line saying what to reinstall) when they do not.",
    )
    p.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    """Handler of ``twinrun doctor``: the versions on stdout; a mismatch raises (one line, exit 2)."""
    from twinrun.record.versions import doctor_rows

    rows, problem = doctor_rows()
    width = max(len(name) for name, _ in rows)
    for name, found in rows:
        sys.stdout.write(f"{name:<{width}}  {found}\n")
    sys.stdout.flush()
    if problem is not None:
        raise TwinrunError(problem)
    sys.stdout.write("ok: torch and torchvision match\n")
    return 0
