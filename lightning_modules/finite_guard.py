"""Stops training on NaN or infinite values without a host sync at every iteration, and keeps
them out of checkpoints."""

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from duet.datamodules.lightning_internals import logging_due
from duet.lightning_modules.checkpoints import model_checkpoint


def floating_tensors(state) -> Iterator[Tensor]:
    """Every floating-point tensor in a nest of dicts, lists and tuples (a checkpoint's parts)."""
    if isinstance(state, Tensor):
        if state.is_floating_point():
            yield state
    elif isinstance(state, dict):
        for value in state.values():
            yield from floating_tensors(value)
    elif isinstance(state, list | tuple):
        for value in state:
            yield from floating_tensors(value)


def all_finite(tensors: list[Tensor]) -> bool:
    """Whether every element of every tensor is finite; one host sync for all of them."""
    if not tensors:
        return True
    return bool(torch.stack([t.isfinite().all().to(tensors[0].device) for t in tensors]).all())


ELSEWHERE = (
    "A loss, weight or optimizer state of another process became NaN or infinite, or a loss "
    "exceeded loss_limit"
)


class FiniteGuard:
    """A module's watch over its losses, weights and optimizer states.

    ``after_iteration`` keeps the largest absolute loss since the last check on the device: a
    NaN or infinity makes it non-finite, and keeping it forces no sync. It is read (one sync and,
    under DDP, one collective so that every process stops together) only on the iterations the
    loggers write, where Lightning syncs anyway, before every checkpoint and when training ends.
    Training stops when it is not finite, or above ``loss_limit`` (None: no limit): a run whose
    losses reach 1e22 is diverging although every number is finite. A divergence is therefore
    reported up to ``log_every_n_steps`` iterations after it began.

    ``before_checkpoint`` refuses to let a checkpoint be written unless its weights and optimizer
    states are finite too: a step can break the weights although the losses that led to it were
    finite. So every checkpoint on disk is finite, and the error names the newest one.
    """

    def __init__(self, loss_limit: float | None = None) -> None:
        self.loss_limit = loss_limit
        self.largest: Tensor | None = None  # largest |loss| since the last check, on the device
        self.latest: dict[str, Tensor] = {}
        self.checked_iteration = 0  # every loss up to this iteration was finite and in bounds
        self.saved_iteration: int | None = None  # of the newest checkpoint that passed

    def after_iteration(self, module: L.LightningModule, losses: dict[str, Tensor]) -> None:
        self.latest = {name: loss.detach() for name, loss in losses.items()}
        largest = torch.stack(list(self.latest.values())).abs().max()
        self.largest = largest if self.largest is None else torch.maximum(self.largest, largest)
        if logging_due(module.trainer):
            self.check(module)

    def check(self, module: L.LightningModule) -> None:
        """Raise FloatingPointError on every process if a loss of any process was not finite or
        above the limit."""
        largest = 0.0 if self.largest is None else float(self.largest)
        in_bounds = math.isfinite(largest) and (
            self.loss_limit is None or largest <= self.loss_limit
        )
        step = module.trainer.global_step
        self._decide(module, in_bounds, lambda: self._loss_problem(largest, step))
        self.largest = None
        self.checked_iteration = step

    def before_checkpoint(self, module: L.LightningModule, checkpoint: dict) -> None:
        """Raise FloatingPointError, so that nothing is written, unless the losses so far and the
        checkpoint's weights and optimizer states are all finite."""
        self.check(module)
        parts = (checkpoint["state_dict"], checkpoint.get("optimizer_states", []))
        weights_finite = all_finite(list(floating_tensors(parts)))
        step = checkpoint["global_step"]
        problem = f"The weights or optimizer states became NaN or infinite by iteration {step}"
        self._decide(module, weights_finite, lambda: problem)
        self.saved_iteration = checkpoint["global_step"]

    def _loss_problem(self, largest: float, step: int) -> str:
        first = self.checked_iteration + 1
        when = f"in iteration {step}" if first == step else f"between iterations {first} and {step}"
        values = ", ".join(f"{name}={float(value):.4g}" for name, value in self.latest.items())
        if math.isfinite(largest):
            what = (
                f"A loss reached {largest:.3g}, above loss_limit {self.loss_limit:g}, {when}: the "
                "run is diverging (raise model.optimization.loss_limit, or set it to null, if such "
                "losses are expected)"
            )
        else:
            what = f"A loss became NaN or infinite {when}"
        return f"{what} (this process's latest: {values})"

    def _decide(self, module: L.LightningModule, good: bool, problem: Callable[[], str]) -> None:
        trainer = module.trainer
        # Decided together, so that no process waits in a collective for one that has stopped.
        if trainer.strategy.reduce_boolean_decision(good, all=True):
            return
        what = ELSEWHERE if good else problem()  # good here: the bad value was another process's
        raise FloatingPointError(
            f"{what}; training stopped at iteration {trainer.global_step} "
            f"(epoch {trainer.current_epoch}). {self._what_to_do(trainer)}"
        )

    def _what_to_do(self, trainer: L.Trainer) -> str:
        if self.saved_iteration is None:
            return (
                "This fit wrote no checkpoint before it: lower the learning rates, or change "
                "seed_everything, and start again (or resume from the checkpoint it started from)."
            )
        callback = model_checkpoint(trainer)
        last = getattr(callback, "last_model_path", "")
        where = last if last and Path(last).is_file() else getattr(callback, "dirpath", None)
        return (
            f"No checkpoint holds non-finite values; the newest, of iteration "
            f"{self.saved_iteration}, is {where}: lower the learning rates, or resume from it "
            "with another seed_everything."
        )

    def start_at(self, iteration: int) -> None:
        """Count from the iteration a fit starts at (a resumed one's), so that a report names
        the iterations of this run, not from 1."""
        self.checked_iteration = iteration
