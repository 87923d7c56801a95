"""The one exception family the apps and the CLI turn into a one-line message (no traceback)."""


class TwinrunError(Exception):
    """Unusable input or configuration; ``str(error)`` says what is wrong and what to do."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``exc``'s message, or its type's name when the message is empty."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
