"""The GANs' grouped options: how their two optimizers are driven, and the stabilizers that the
reference lacks (all off by default). In YAML, ``optimization: {generator_clip_norm: 1.0}`` and
``stabilizers: {ema_decay: 0.999, r1_weight: 1.0}``; on the command line
``--model.stabilizers.ema_decay 0.999``."""

from dataclasses import dataclass
from typing import ClassVar

from lightning.pytorch.cli import LRSchedulerCallable

from duet.datamodules import option_checks
from duet.lightning_modules.manual_optimization import Optimization


@dataclass(frozen=True)
class GANOptimization(Optimization):
    """How the GAN's two optimizers are driven.

    Args:
        loss_limit: stop training when a loss's magnitude exceeds it (a diverging run; see
            ``FiniteGuard``); None for no limit. NaN and infinity always stop training.
        scheduler_interval: schedulers step once per "iteration" (a batch, whichever networks
            stepped in it) or per "epoch".
        generator_scheduler, discriminator_scheduler: callables taking the optimizer and
            returning a learning-rate scheduler (e.g. ``torch.optim.lr_scheduler.StepLR``), or
            None for a constant rate; their states are saved in checkpoints.
        generator_clip_norm, discriminator_clip_norm: clip the network's gradients to this total
            2-norm before each of its steps; None for no clipping. (Lightning's
            ``trainer.gradient_clip_val`` does not apply to manual optimization.)
    """

    generator_scheduler: LRSchedulerCallable | None = None
    discriminator_scheduler: LRSchedulerCallable | None = None
    generator_clip_norm: float | None = None
    discriminator_clip_norm: float | None = None

    MAKERS: ClassVar[tuple[str, ...]] = ("generator_scheduler", "discriminator_scheduler")


@dataclass(frozen=True)
class Stabilizers:
    """Options for small data and steadier training, all off by default (the reference has
    none); ``configs/gan_recipe.yaml`` turns on the two that make every digit appear.

    Args:
        ema_decay: keep an exponential moving average of the generator's weights (and BatchNorm
            statistics) with this decay, used for sampling and evaluation; None for none.
        augment_translation, augment_cutout: differentiable augmentation of every image the
            discriminator judges, real and fake, in both steps (``DifferentiableAugmentation``):
            the largest shift and the side of the blanked square, as fractions of the image size.
        spectral_norm: spectrally normalise the discriminator's Linear and Conv2d layers.
        r1_weight: γ of the R1 penalty γ/2·mean(‖∇ₓD(x)‖²) on real images, added to the
            discriminator's loss; None for none.
    """

    ema_decay: float | None = None
    augment_translation: float = 0.0
    augment_cutout: float = 0.0
    spectral_norm: bool = False
    r1_weight: float | None = None

    def check(self, owner: str) -> None:
        if self.ema_decay is not None:
            note = ", or null to turn EMA off"
            name = "stabilizers.ema_decay"
            option_checks.between(owner, name, self.ema_decay, 0, 1, closed=False, note=note)
        option_checks.at_least(owner, "stabilizers.r1_weight", self.r1_weight, 0, optional=True)
