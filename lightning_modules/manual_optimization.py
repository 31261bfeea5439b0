"""The base of every duet module that steps several optimizers by hand in one training step.

Lightning leaves schedulers, gradient clipping and the optimizers' settings on resume to the
module under manual optimization, and counts every optimizer step in ``global_step``. This base
does that bookkeeping once, so that a module's ``training_step`` holds only its algorithm:

- ``optimizer_plans`` (the module's) names each optimizer with its scheduler maker and clipping
  norm; ``configure_optimizers`` builds the schedulers from them;
- ``advance_schedules`` at the start and at the end of a training step brings every schedule to
  the trainer's iteration or epoch count (so a resumed run continues exactly);
- ``on_before_optimizer_step`` clips each optimizer's gradients to its norm;
- the settings a resumed run was configured with win over the checkpoint's, and are said
  (``optimizer_settings.py``);
- ``finish_iteration`` hands the losses to the ``FiniteGuard`` and logs them when the loggers
  write; the guard also checks every checkpoint before it is written;
- checkpoints record the module's class and are refused when their settings differ.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import lightning as L
from lightning.pytorch.cli import LRSchedulerCallable
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor
from torch.optim import Optimizer

from duet.datamodules import option_checks
from duet.datamodules.lightning_internals import logging_due
from duet.lightning_modules import optimization
from duet.lightning_modules.checkpoints import check_state_matches
from duet.lightning_modules.finite_guard import FiniteGuard
from duet.lightning_modules.optimization import SchedulerInterval
from duet.lightning_modules.optimizer_settings import (
    configured_settings,
    restore_configured_settings,
)
from duet.lightning_modules.option_groups import nest_moved_options
from duet.lightning_modules.runtime import skip_failing_nvml_probe
from duet.lightning_modules.steps import record_module_class


@dataclass(frozen=True)
class Optimization:
    """How a module's optimizers are driven; each module's own group adds its schedulers and
    clipping norms (``GANOptimization``, ``AgentOptimization``).

    Args:
        loss_limit: stop training when a loss's magnitude exceeds it (a diverging run; see
            ``FiniteGuard``); None for no limit. NaN and infinity always stop training.
        scheduler_interval: schedulers step once per "iteration" (a batch, whichever networks
            stepped in it) or per "epoch".
    """

    loss_limit: float | None = 1e6
    scheduler_interval: SchedulerInterval = "iteration"

    MAKERS: ClassVar[tuple[str, ...]] = ()  # fields checkpoints do not store (schedulers)

    def check(self, owner: str) -> None:
        """Refuse a bad value of this group or of a module's own (every ``*_clip_norm``)."""
        optimization.check_interval(owner, self.scheduler_interval)
        if self.loss_limit is not None:
            option_checks.positive(owner, "optimization.loss_limit", self.loss_limit)
        norms = {
            f"optimization.{field.name}": getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name.endswith("_clip_norm")
        }
        optimization.check_clip_norms(owner, norms)


class OptimizerPlan(NamedTuple):
    """One optimizer of a module, with its scheduler maker and gradient-clipping norm (None:
    none). ``option`` and ``scheduler_option`` name the options that configure them, as
    messages name them."""

    optimizer: Optimizer
    option: str
    scheduler: LRSchedulerCallable | None = None
    scheduler_option: str = "scheduler"
    clip_norm: float | None = None


class ManualOptimizationModule(L.LightningModule):
    """A LightningModule under manual optimization with schedules, clipping, a finiteness guard
    and optimizer settings that survive a resume (module docstring).

    ``OPTION_GROUPS`` names a subclass's grouped options (``option_groups.py``), so that
    checkpoints of duet 0.2, which stored them at the top level, still load.
    """

    OPTION_GROUPS: ClassVar[dict[str, type]] = {}

    def __init__(self, optimization: Optimization) -> None:
        super().__init__()
        optimization.check(type(self).__name__)
        self.automatic_optimization = False
        self.scheduler_interval = optimization.scheduler_interval
        self.finite_guard = FiniteGuard(optimization.loss_limit)
        self.clip_norms: list[float | None] = []  # per optimizer, set by configure_optimizers

    @classmethod
    def upgrade_options(cls, hparams: dict) -> dict:
        """A checkpoint's hyperparameters with the options of earlier releases in today's
        places (``option_groups.nest_moved_options``)."""
        return nest_moved_options(cls, hparams)

    def optimizer_plans(self) -> Sequence[OptimizerPlan]:
        """The module's optimizers in the order ``training_step`` receives them."""
        raise NotImplementedError

    def optimizer_list(self) -> list[LightningOptimizer]:
        """``self.optimizers()``, which Lightning types as one optimizer or a list: one for a
        module with one optimizer, a list (in ``optimizer_plans``'s order) otherwise."""
        optimizers = self.optimizers()
        return optimizers if isinstance(optimizers, list) else [optimizers]

    def configure_optimizers(self):
        plans = self.optimizer_plans()
        self.optimizer_options = [plan.option for plan in plans]
        self.clip_norms = [plan.clip_norm for plan in plans]
        optimizers = [plan.optimizer for plan in plans]
        makers = {plan.scheduler_option: plan.scheduler for plan in plans}
        schedulers = optimization.scheduler_configs(type(self).__name__, optimizers, makers)
        return optimization.optimizers_with_schedulers(optimizers, schedulers)

    def on_fit_start(self) -> None:
        skip_failing_nvml_probe()
        self.optimizer_settings = configured_settings(self.trainer.optimizers)  # before a resume

    def on_train_start(self) -> None:  # after a resume restored the optimizers and the step
        self.finite_guard.start_at(self.trainer.global_step)
        options = self.optimizer_options
        restore_configured_settings(self.trainer.optimizers, self.optimizer_settings, options)

    def advance_schedules(self) -> None:
        """Step every scheduler up to the finished iterations or epochs: call at the start of a
        training step (a new epoch's rates) and at its end (the next iteration's)."""
        optimization.advance_schedules(self, self.scheduler_interval)

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        optimization.clip_gradients(self, optimizer, self.clip_norms)

    def finish_iteration(
        self,
        losses: dict[str, Tensor],
        details: dict[str, Tensor] | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Watch the iteration's losses for NaN, infinity and divergence, and log them (on the
        progress bar too) and ``details`` when the loggers write this iteration."""
        self.finite_guard.after_iteration(self, losses)
        if logging_due(self.trainer):
            self.log_dict(losses, prog_bar=True, batch_size=batch_size)
            if details:
                self.log_dict(details, batch_size=batch_size)

    def on_train_end(self) -> None:
        self.finite_guard.check(self)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.finite_guard.before_checkpoint(self, checkpoint)
        record_module_class(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_state_matches(self, checkpoint)
