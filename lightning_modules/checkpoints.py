"""Checks that turn a bad checkpoint into one clear error before anything is loaded."""

import importlib
import inspect
from pathlib import Path
from typing import TypeVar

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import instantiate_module
from lightning.pytorch.utilities import rank_zero_warn

from duet.lightning_modules.checkpoint_files import digest_matches, newest_intact
from duet.lightning_modules.networks.builders import identity
from duet.lightning_modules.option_groups import flattened

SavedModule = TypeVar("SavedModule", bound=L.LightningModule)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the module."""


def model_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The run's ModelCheckpoint. Not ``trainer.checkpoint_callback``: that is the first
    checkpointing callback of any kind."""
    return next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint at ``path`` as a dict; a missing, truncated or corrupt file is named."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist or is not a file.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"Checkpoint {path} cannot be read; it is truncated or corrupt "
            f"({type(error).__name__}: {error}). Resume from an earlier checkpoint, such as a "
            "periodic one beside it."
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (it has no state_dict).")
    if not digest_matches(checkpoint):
        raise CheckpointError(
            f"Checkpoint {path} is damaged: its tensors differ from those it was written with "
            "(they no longer match its digest), so nothing of it was used. The newest intact "
            f"checkpoint beside it: {newest_intact(path.parent, skip=path)}."
        )
    return checkpoint


def import_class(class_path: str) -> type | None:
    """The class at a dotted import path, or None when there is none."""
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return None


# Before 0.2 the packages were installed under these top-level names, without the duet prefix.
_PACKAGES_BEFORE_0_2 = ("lightning_modules.", "datamodules.", "callbacks.", "scripts.")


def saved_module_path(checkpoint: dict) -> str | None:
    """The import path of the module class that saved the checkpoint (older names mapped)."""
    saved = checkpoint.get("duet_module")
    if saved is not None and saved.startswith(_PACKAGES_BEFORE_0_2):
        return f"duet.{saved}"
    return saved


def check_module_class(checkpoint: dict, model_class_path: str, path: str | Path) -> None:
    """Raise unless the checkpoint was saved by the class ``model_class_path`` names."""
    saved = saved_module_path(checkpoint)
    if saved is not None and import_class(saved) is not import_class(model_class_path):
        raise CheckpointError(
            f"Checkpoint {path} was saved by {saved}, but the model is {model_class_path}. Use "
            "the experiment config the checkpoint was trained with."
        )


def init_defaults(module_class: type) -> dict:
    """Default of each option of ``module_class``, those its ``**options`` pass on to its base
    classes' ``__init__`` included (LSGAN's and DCGAN's to GAN's)."""
    found: dict = {}
    for cls in module_class.__mro__:
        if "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(vars(cls)["__init__"]).parameters.values()
        for p in parameters:
            if p.default is not p.empty:
                found.setdefault(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return found


def check_module_settings(checkpoint: dict, model_config: dict, path: str | Path) -> None:
    """Raise, naming each setting and both values, when a run from a checkpoint sets a module
    setting to a value other than the checkpoint's. A resumed run continues the checkpoint's
    module: a setting left at its default takes the checkpoint's value (as LightningCLI does),
    but one set to something else would be replaced without a word. So the agent's sizes, None
    by default and filled in from the environment, may be left unset."""
    module_class = import_class(model_config.get("class_path", ""))
    saved = upgraded_options(module_class, checkpoint.get("hyper_parameters") or {})
    given = dict(model_config.get("init_args") or {})
    defaults = init_defaults(module_class) if isinstance(module_class, type) else {}
    # Networks and losses compare by what they are, not by how they were named.
    for name in getattr(module_class, "COMPONENTS", ()):
        for values in (saved, given, defaults):
            if name in values:
                values[name] = identity(values[name])
    # Grouped options compare field by field (a checkpoint stores no schedulers).
    saved, given, defaults = flattened(saved), flattened(given), flattened(defaults)
    differences = [
        f"model.{name} is {given[name]!r} here but {saved[name]!r} in the checkpoint"
        for name in sorted(set(given) & set(saved))
        if given[name] != saved[name] and given[name] != defaults.get(name, object())
    ]
    if differences:
        raise CheckpointError(
            f"{'; '.join(differences)} ({path}). A resumed run continues the checkpoint's "
            "module: drop these options, or start a new run without --ckpt_path."
        )


def upgraded_options(module_class: type | None, hparams: dict) -> dict:
    """A checkpoint's hyperparameters with earlier releases' options in their places today
    (``upgrade_options`` of duet's modules; other modules' as they are)."""
    upgrade = getattr(module_class, "upgrade_options", None)
    return upgrade(dict(hparams)) if upgrade is not None else dict(hparams)


def module_from_checkpoint(module_class: type[SavedModule], checkpoint: dict) -> SavedModule:
    """The module a checkpoint holds, built from its hyperparameters (upgraded), its state
    loaded: what Lightning's ``load_from_checkpoint`` does, from a checkpoint already read."""
    hparams = upgraded_options(module_class, checkpoint.get("hyper_parameters") or {})
    if hparams.pop("_instantiator", None) is not None:  # saved by LightningCLI: a parsed config
        module = instantiate_module(module_class, hparams)
    else:
        module = module_class(**hparams)
    module.on_load_checkpoint(checkpoint)
    module.load_state_dict(checkpoint["state_dict"])
    return module


def check_state_matches(module: L.LightningModule, checkpoint: dict) -> None:
    """Raise, naming the differences, unless the checkpoint's tensors fit the module's exactly."""
    ours = module.state_dict()
    theirs = checkpoint["state_dict"]
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    reshaped = [
        f"{name}: checkpoint {tuple(theirs[name].shape)}, model {tuple(ours[name].shape)}"
        for name in sorted(set(ours) & set(theirs))
        if theirs[name].shape != ours[name].shape
    ]
    problems = [
        *(f"missing {name}" for name in missing[:5]),
        *(f"unexpected {name}" for name in unexpected[:5]),
        *reshaped[:5],
    ]
    if problems:
        raise CheckpointError(
            f"The checkpoint does not fit this {type(module).__name__} (another architecture or "
            f"size): {'; '.join(problems)}. Nothing was loaded."
        )


def warn_of_an_old_noise_state(checkpoint: dict) -> None:
    """A GAN checkpoint of duet 0.1 carried its noise generator's state, which is not used now."""
    if "rng_state" in checkpoint:
        rank_zero_warn(
            "This checkpoint, from an earlier duet, carries a noise generator state; noise now "
            "comes from (seed, process, iteration), so the resumed run draws other noise than "
            "the original would have. Everything else resumes exactly."
        )


def load_duet_module(
    path: str | Path, base: type[SavedModule], what: str, device: str = "cpu"
) -> tuple[SavedModule, dict]:
    """(module in eval mode on ``device``, checkpoint dict) for a checkpoint saved by ``base`` or a
    subclass of it; a CheckpointError naming the file and what was found otherwise."""
    checkpoint = read_checkpoint(path)
    saved = saved_module_path(checkpoint)
    module_class = import_class(saved) if saved else None
    if not (isinstance(module_class, type) and issubclass(module_class, base)):
        raise CheckpointError(f"{path} holds a {saved or 'non-duet'} checkpoint, not {what}.")
    return module_from_checkpoint(module_class, checkpoint).to(device).eval(), checkpoint
