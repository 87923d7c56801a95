"""Plain ``nn.Module`` definitions; no training logic lives here."""

from typing import Any


def check_sizes(**sizes: Any) -> None:
    """Raise ``ValueError`` (one line, naming the argument) unless every size is an integer >= 1.

    torch accepts a zero width (the model then trains on nothing) and a string fails deep in a layer.
    """
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is not usable: give an integer >= 1")
