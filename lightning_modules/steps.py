"""Helpers shared by the manual-optimization modules."""

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import lightning as L
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


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


def count_step(optimizer: LightningOptimizer) -> None:
    """Count one step of ``optimizer`` in ``trainer.global_step`` without stepping it: for an
    update computed elsewhere (the agent's compiled iteration), as ``step()`` would count it."""
    optimizer._on_before_step()
    optimizer._on_after_step()


@contextmanager
def manual_gradient_sync(module: L.LightningModule) -> Iterator[None]:
    """Keep DDP from reducing gradients inside; ``average_gradients`` does it per network.

    DDP's reducer expects a gradient for every parameter in each backward pass, which fails when
    ``toggle_optimizer`` freezes the other network (the known "parameters that were not used in
    producing loss" error of manual-optimization GANs). Averaging by hand syncs exactly the
    network about to step, once per sub-step, under any DDP setting.
    """
    block = getattr(module.trainer.strategy, "block_backward_sync", None)
    with block() if block is not None else nullcontext():
        yield


def average_gradients(module: L.LightningModule, *networks: nn.Module) -> None:
    """Average the networks' gradients over all processes in one all-reduce (no-op on one)."""
    if module.trainer.world_size == 1:
        return
    grads = [p.grad for net in networks for p in net.parameters() if p.grad is not None]
    for grad, value in zip(grads, averaged_over_processes(module, grads), strict=True):
        grad.copy_(value)


def averaged_over_processes(module: L.LightningModule, tensors: list[Tensor]) -> list[Tensor]:
    """The tensors' means over all processes, from one all-reduce of them flattened together."""
    if module.trainer.world_size == 1 or not tensors:
        return tensors
    averaged = module.trainer.strategy.reduce(_flatten_dense_tensors(tensors), reduce_op="mean")
    return list(_unflatten_dense_tensors(averaged, tensors))


def logging_due(module: L.LightningModule) -> bool:
    """Whether the loggers write metrics logged in this training iteration.

    On other iterations Lightning drops step metrics, but each ``self.log`` call still costs its
    bookkeeping, a visible share of a small model's iteration in a profile (BENCHMARKS.md).
    Metrics stay on the progress bar until the next logged step.
    """
    return module.trainer._logger_connector.should_update_logs  # Lightning's own rule


def record_module_class(module: L.LightningModule, checkpoint: dict) -> None:
    """Store the module's import path in a checkpoint, so scripts can rebuild it from the file."""
    checkpoint["duet_module"] = f"{type(module).__module__}.{type(module).__qualname__}"
