"""Progress reporting shared by every long stage: `progress(stage, fraction in [0, 1], message="")`.

A job runner may raise from its progress callable to cancel the work between steps."""

from collections.abc import Callable

ProgressFn = Callable[..., None]


def no_progress(stage: str, fraction: float, message: str = "") -> None:
    """The default progress callable: reports nothing."""
