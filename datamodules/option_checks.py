"""Checks of numeric settings, made when an object is built, before any work starts: each
failure is one message naming the owner, the setting, its value and the allowed range."""

import math
from collections.abc import Callable

import torch


def require(owner: str, name: str, value, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{owner} {name}={value!r} is out of range: it must be {allowed}.")


def at_least(owner: str, name: str, value, minimum, optional: bool = False) -> None:
    """``value`` ≥ ``minimum`` (or None when ``optional``)."""
    if optional and value is None:
        return
    allowed = f"at least {minimum}" + (" or null" if optional else "")
    require(owner, name, value, isinstance(value, int | float) and value >= minimum, allowed)


def positive(owner: str, name: str, value) -> None:
    ok = isinstance(value, int | float) and math.isfinite(value) and value > 0
    require(owner, name, value, ok, "a finite number above 0")


def between(owner: str, name: str, value, low, high, closed: bool = True, note: str = "") -> None:
    """``value`` in [low, high] (``closed``) or (low, high); ``note`` adds to the message."""
    if not isinstance(value, int | float):
        ok = False
    elif closed:
        ok = low <= value <= high
    else:
        ok = low < value < high
    interval = f"[{low}, {high}]" if closed else f"({low}, {high})"
    require(owner, name, value, ok, f"in {interval}{note}")


def learning_rates(owner: str, name: str, make_optimizer: Callable) -> None:
    """The optimizer ``make_optimizer`` builds has learning rates above 0 (built once on a
    stand-in parameter, so a bad rate fails when the module is built, not at training)."""
    try:
        optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(1))])
    except ValueError as error:  # torch's own checks, e.g. "Invalid learning rate: -1.0"
        raise ValueError(f"{owner} {name}: {error}") from error
    for group in optimizer.param_groups:
        if "lr" in group:
            positive(owner, f"{name}.lr", float(group["lr"]))


def image_shape(owner: str, value) -> tuple[int, int, int]:
    """``value`` as a (channels, height, width) tuple of positive integers."""
    if value is None:
        raise ValueError(
            f"{owner} image_shape=None: the DataModule states no image shape. Give it an "
            "`image_shape` attribute (channels, height, width), as duet's image DataModules have."
        )
    shape = tuple(value) if isinstance(value, list | tuple) else ()
    ok = len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)
    require(owner, "image_shape", value, ok, "(channels, height, width), three positive integers")
    return shape
