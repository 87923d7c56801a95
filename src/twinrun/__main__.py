"""``python -m twinrun`` is the ``twinrun`` command."""

from twinrun.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
