"""Learning-rate schedules and gradient clipping under manual optimization.

Lightning steps schedulers and clips gradients only under automatic optimization, and refuses
``trainer.gradient_clip_val`` and ``trainer.accumulate_grad_batches`` under manual optimization.
duet's modules therefore take a scheduler per optimizer and a clipping norm per network as their
own options, and these helpers do the work:

- ``scheduler_configs`` builds the schedulers in ``configure_optimizers``; Lightning then saves
  and restores their states with the checkpoint.
- ``advance_schedules``, called at the start and at the end of each training step, brings every
  scheduler's step count to the trainer's counter: the number of finished iterations, or of
  finished epochs. Counting from the trainer rather than stepping on events makes a resumed run
  continue exactly, wherever the checkpoint was taken.
- ``clip_gradients``, called from ``on_before_optimizer_step``, which Lightning runs after
  unscaling float16 gradients, clips one optimizer's gradients by their total 2-norm.
"""

from collections.abc import Sequence
from typing import Literal, get_args

import lightning as L
from lightning.pytorch.cli import LRSchedulerCallable
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from duet.datamodules import option_checks

SchedulerInterval = Literal["iteration", "epoch"]


def check_interval(owner: str, interval: str) -> None:
    """Refuse an unknown scheduler interval."""
    if interval not in get_args(SchedulerInterval):
        raise ValueError(
            f"{owner}: optimization.scheduler_interval must be 'iteration' or 'epoch', got "
            f"{interval!r}."
        )


def check_clip_norms(owner: str, clip_norms: dict[str, float | None]) -> None:
    """Refuse a clipping norm that is not positive."""
    for name, norm in clip_norms.items():
        if norm is not None:
            option_checks.positive(owner, name, norm)


def scheduler_configs(
    owner: str, optimizers: Sequence[Optimizer], makers: dict[str, LRSchedulerCallable | None]
) -> list[dict]:
    """A Lightning scheduler config for each optimizer whose maker (keyed by option name, in the
    optimizers' order) is set."""
    configs = []
    for (name, make), optimizer in zip(makers.items(), optimizers, strict=True):
        if make is None:
            continue
        scheduler = make(optimizer)
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{owner}: {name} is ReduceLROnPlateau, which needs a monitored metric at each "
                "step; duet's modules step schedulers by iteration or epoch. Choose a schedule "
                "such as StepLR, CosineAnnealingLR or LinearLR."
            )
        configs.append({"scheduler": scheduler})
    return configs


def optimizers_with_schedulers(optimizers: Sequence[Optimizer], configs: list[dict]):
    """What ``configure_optimizers`` returns: the optimizers, and the schedulers when any."""
    return (list(optimizers), configs) if configs else tuple(optimizers)


def advance_schedules(module: L.LightningModule, interval: SchedulerInterval) -> None:
    """Step each scheduler until its count equals the finished iterations or epochs."""
    trainer = module.trainer
    target = trainer.global_step if interval == "iteration" else trainer.current_epoch
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        assert not isinstance(scheduler, ReduceLROnPlateau)  # scheduler_configs refuses it
        while scheduler.last_epoch < target:
            scheduler.step()


def clip_gradients(
    module: L.LightningModule, optimizer: Optimizer, max_norms: Sequence[float | None]
) -> None:
    """Clip ``optimizer``'s gradients to the norm given for it (``max_norms`` in the order of
    ``trainer.optimizers``); nothing when that is None."""
    index = next(i for i, opt in enumerate(module.trainer.optimizers) if opt is optimizer)
    if max_norms[index] is not None:
        module.clip_gradients(
            optimizer, gradient_clip_val=max_norms[index], gradient_clip_algorithm="norm"
        )
