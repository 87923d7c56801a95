"""The one exception family the apps and the CLI turn into a one-line message (no traceback)."""


class TwinrunError(Exception):
    """Unusable input or configuration; ``str(error)`` says what is wrong and what to do."""
