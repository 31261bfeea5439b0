"""Helpers shared by the manual-optimization modules."""

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor


def _do_nothing() -> None:
    pass


def step_uncounted(optimizer: LightningOptimizer) -> None:
    """``optimizer.step()`` that does not advance ``trainer.global_step``.

    Lightning counts every optimizer step of manual optimization in ``global_step`` (Lightning
    issue 17958), so two optimizers would count two steps per batch. Each duet module lets exactly
    one step per batch count, so ``max_steps``, ``every_n_train_steps`` and the logger's x-axis
    all count training iterations (batches).
    """
    before, after = optimizer._on_before_step, optimizer._on_after_step
    optimizer._on_before_step = optimizer._on_after_step = _do_nothing
    try:
        optimizer.step()
    finally:
        optimizer._on_before_step, optimizer._on_after_step = before, after


def raise_if_not_finite(module: L.LightningModule, losses: dict[str, Tensor]) -> None:
    """Stop training with a clear message when a loss is NaN or infinite.

    Raising (rather than ``trainer.should_stop``) keeps ModelCheckpoint from writing the broken
    weights, so the last checkpoint on disk stays the last good one.
    """
    losses = {name: loss.detach() for name, loss in losses.items()}
    values = torch.stack(list(losses.values()))
    if bool(torch.isfinite(values).all()):
        return
    bad = {name: loss.item() for name, loss in losses.items() if not torch.isfinite(loss)}
    trainer = module.trainer
    checkpoint = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none saved yet"
    raise FloatingPointError(
        f"{bad} at training iteration {trainer.global_step} (epoch {trainer.current_epoch}). "
        f"Training stopped; the last good checkpoint is: {checkpoint}. Lower the learning rates "
        "or resume from that checkpoint with another seed."
    )


def record_module_class(module: L.LightningModule, checkpoint: dict) -> None:
    """Store the module's import path in a checkpoint, so scripts can rebuild it from the file."""
    checkpoint["duet_module"] = f"{type(module).__module__}.{type(module).__qualname__}"
