"""Helpers shared by the manual-optimization modules."""

from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import torch
from lightning.pytorch.strategies import ParallelStrategy
from torch import Tensor, nn


@contextmanager
def manual_gradient_sync(module: L.LightningModule) -> Iterator[None]:
    """Keep DDP from reducing gradients inside; ``average_gradients`` does it per network.

    DDP's reducer expects a gradient for every parameter in each backward pass, which fails when
    ``toggle_optimizer`` freezes the other network (the known "parameters that were not used in
    producing loss" error of manual-optimization GANs). Averaging by hand syncs exactly the
    network about to step, once per sub-step, under any DDP setting.
    """
    strategy = module.trainer.strategy
    if isinstance(strategy, ParallelStrategy):
        with strategy.block_backward_sync():
            yield
    else:
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
    flat = torch.cat([tensor.reshape(-1) for tensor in tensors])
    averaged = module.trainer.strategy.reduce(flat, reduce_op="mean")
    pieces = averaged.split([tensor.numel() for tensor in tensors])
    return [piece.view_as(tensor) for piece, tensor in zip(pieces, tensors, strict=True)]


def record_module_class(module: L.LightningModule, checkpoint: dict) -> None:
    """Store the module's import path in a checkpoint, so scripts can rebuild it from the file."""
    checkpoint["duet_module"] = f"{type(module).__module__}.{type(module).__qualname__}"
