"""Optimizer settings given for a resumed run win over the checkpoint's, and are said.

Lightning restores each optimizer's state from the checkpoint, its settings (learning rate,
betas, …) included, so ``fit --ckpt_path X --model.generator_optimizer.lr 1e-5`` would record
1e-5 in config.yaml and go on at the checkpoint's rate. A module records the settings its
optimizers were configured with before the restore (``on_fit_start``) and puts the numeric ones
back after it (``on_train_start``), naming each change in one line.

A scheduler owns its optimizer's learning rate (torch marks such groups with ``initial_lr``): the
resumed schedule continues from the checkpoint's base rate, so a different configured rate is
refused rather than dropped.
"""

from numbers import Number

from lightning.pytorch.utilities import rank_zero_info
from torch.optim import Optimizer


def configured_settings(optimizers: list[Optimizer]) -> list[list[dict]]:
    """Each optimizer's settings per parameter group, everything but the parameters."""
    return [
        [
            {key: value for key, value in group.items() if key != "params"}
            for group in opt.param_groups
        ]
        for opt in optimizers
    ]


def is_numeric(value) -> bool:
    """A number or a tuple of numbers (betas), not a flag such as ``fused``."""
    if isinstance(value, tuple | list):
        return all(is_numeric(item) for item in value)
    return isinstance(value, Number) and not isinstance(value, bool)


def restore_configured_settings(
    optimizers: list[Optimizer], configured: list[list[dict]], names: list[str]
) -> list[str]:
    """Set each optimizer's numeric settings back to ``configured`` where the restored ones
    differ; the changes, one ``"name: key old → new"`` each, are also said in one line."""
    changes = []
    for name, optimizer, groups in zip(names, optimizers, configured, strict=True):
        for group, settings in zip(optimizer.param_groups, groups, strict=True):
            settings = without_scheduled_rate(name, group, settings)
            for key, value in settings.items():
                restored = group.get(key)
                if (
                    is_numeric(value)
                    and is_numeric(restored)
                    and tuple_of(restored) != tuple_of(value)
                ):
                    group[key] = value
                    changes.append(f"{name}: {key} {restored} → {value}")
    if changes:
        rank_zero_info(
            "Resumed with the optimizer settings of this run, not the checkpoint's: "
            + "; ".join(changes)
        )
    return changes


def without_scheduled_rate(name: str, restored: dict, settings: dict) -> dict:
    """``settings`` without the rates a scheduler owns; an error if the base rate changed."""
    if "initial_lr" not in settings:
        return settings
    configured, saved = settings["initial_lr"], restored.get("initial_lr", settings["initial_lr"])
    if configured != saved:
        raise ValueError(
            f"{name}: lr {configured} is configured, but the checkpoint's scheduled run started "
            f"from lr {saved}, and its schedule continues from that rate. Resume with lr {saved}, "
            "or start a new run (no ckpt_path) for another rate."
        )
    return {key: value for key, value in settings.items() if key not in ("lr", "initial_lr")}


def tuple_of(value):
    return tuple(value) if isinstance(value, tuple | list) else value
