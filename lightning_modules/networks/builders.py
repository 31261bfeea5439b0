"""How a GAN module is given its networks and losses: as builders and functions that a YAML
config names with ``class_path``/``init_args`` (or an import path), and that checkpoints record.

A generator builder is called as ``builder(noise_dim, image_shape)``, a discriminator builder as
``builder(image_shape)``, each returning an ``nn.Module``: any such class (its first parameters
named so) is a builder, and ``init_args`` set its other parameters. Losses take the
discriminator's logits for real and for generated images.
"""

import functools
import importlib
import math
from collections.abc import Callable, MutableMapping
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

ImageShape = tuple[int, int, int]  # (channels, height, width)
REFERENCE_IMAGE_SHAPE: ImageShape = (1, 28, 28)  # MNIST, the reference notebook's data
GeneratorBuilder = Callable[[int, ImageShape], nn.Module]  # (noise_dim, image_shape) -> G
DiscriminatorBuilder = Callable[[ImageShape], nn.Module]  # image_shape -> D
GANLoss = Callable[[Tensor, Tensor], Tensor]  # (D(x) logits, D(G(z)) logits) -> scalar loss


def pixels(image_shape: ImageShape) -> int:
    return math.prod(image_shape)


def import_path(value: Any) -> str | None:
    """``module.name`` under which ``value`` can be imported again, or None."""
    module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", "")
    if module is None or "<" in name or module == "__main__":
        return None
    try:
        found = functools.reduce(getattr, name.split("."), importlib.import_module(module))
    except (ImportError, AttributeError):
        return None
    return f"{module}.{name}" if found is value else None


def describe(value: Any) -> dict | str | None:
    """A builder or loss as a config names it, for checkpoints: ``{"class_path", "init_args"}``
    for a class or a ``functools.partial`` of one with keyword arguments, an import path for a
    function; None for what cannot be named (a lambda, a closure, a class defined in a script)."""
    if isinstance(value, dict | str):
        return value  # already a description (from a config or a checkpoint)
    keywords: dict = {}
    if isinstance(value, functools.partial):
        # functools.partial(Class, **init_args) from Python, or jsonargparse's form of a class
        # given by class_path/init_args: partial(instantiate, instantiator, Class, **init_args).
        target = value.args[-1] if value.args else value.func
        if value.args and not isinstance(target, type):
            return None
        value, keywords = target, dict(value.keywords)
    path = import_path(value)
    if path is None:
        return None
    if isinstance(value, type):
        return {"class_path": path, "init_args": keywords}
    return path if not keywords else None


def resolve(value: Any) -> Any:
    """The builder or loss that ``describe`` named (a callable is returned as it is)."""
    if isinstance(value, str):
        module, _, name = value.rpartition(".")
        return getattr(importlib.import_module(module), name)
    if isinstance(value, dict):
        return functools.partial(resolve(value["class_path"]), **value.get("init_args", {}))
    return value


def identity(value: Any) -> Any:
    """What a builder or loss amounts to, to compare a config's with a checkpoint's: (the class or
    function, its keyword arguments), whichever import path or form named it."""
    description = describe(value)
    if description is None:
        return value
    if isinstance(description, str):
        description = {"class_path": description}
    try:
        return resolve(description["class_path"]), description.get("init_args") or {}
    except (ImportError, AttributeError, ValueError):
        return description["class_path"], description.get("init_args") or {}


def describe_for_checkpoints(owner: str, hparams: MutableMapping, names: tuple[str, ...]) -> None:
    """Replace each of ``names`` in ``hparams`` by its description; one that cannot be named is
    left out (a checkpoint then builds the default), with a warning saying how to load it."""
    for name in names:
        if name not in hparams:
            continue
        description = describe(hparams[name])
        if description is None:
            rank_zero_warn(
                f"{owner}: {name}={hparams[name]!r} cannot be named in checkpoints (it is not "
                "importable by name); pass it again when loading one: "
                f"{owner}.load_from_checkpoint(path, {name}=...)."
            )
            del hparams[name]
        else:
            hparams[name] = description
