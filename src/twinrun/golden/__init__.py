"""Golden runs: one small committed file per case, and the check of a new run against it.

``record`` builds the golden dict from a run directory, ``check`` judges a run against a golden (bit-exact
in the same environment class, by tolerance bands otherwise), ``bands`` holds the bands and their
calibration, ``runner`` re-runs a recorded case in a fresh process, ``report`` and ``html`` render a
verdict, ``cli`` is ``twinrun golden``. See docs/golden.md.
"""
