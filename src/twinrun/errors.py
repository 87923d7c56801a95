"""The one exception family the apps and the CLI turn into a one-line message (no traceback)."""


class TwinrunError(Exception):
    """Unusable input or configuration; ``str(error)`` says what is wrong and what to do."""


class RecorderError(TwinrunError):
    """The Recorder was used in a way that cannot give a trace (one line: what, and what to do).

    Here rather than in ``record/recorder.py`` so that ``record/replay.py``, which the recorder imports,
    raises it without importing the recorder back; ``twinrun.record.recorder.RecorderError`` is this class.
    """


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``exc``'s message, or its type's name when the message is empty."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
