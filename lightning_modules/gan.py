"""GAN, LSGAN and DCGAN: the reference's ``run_a_gan`` as LightningModules with manual optimization.

The variants differ only in the defaults of their networks and their two loss functions, which
any config can replace (``networks/builders.py``).
"""

from collections.abc import Iterable

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.optim import Adam, Optimizer
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from duet.datamodules import settings
from duet.lightning_modules import optimization
from duet.lightning_modules.augmentation import augmentation_or_none
from duet.lightning_modules.checkpoints import check_state_matches, warn_of_an_old_noise_state
from duet.lightning_modules.finite_guard import FiniteGuard
from duet.lightning_modules.gan_losses import (
    bce_discriminator_loss,
    bce_generator_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    ls_discriminator_loss,
    ls_generator_loss,
    noise_seed,
    r1_penalty,
    sample_noise,
)
from duet.lightning_modules.networks import (
    DCDiscriminator,
    DCGenerator,
    MLPDiscriminator,
    MLPGenerator,
)
from duet.lightning_modules.networks.builders import (
    REFERENCE_IMAGE_SHAPE,
    DiscriminatorBuilder,
    GANLoss,
    GeneratorBuilder,
    ImageShape,
    describe_for_checkpoints,
    resolve,
)
from duet.lightning_modules.networks.spectral_norm import spectrally_normalised
from duet.lightning_modules.optimization import SchedulerInterval, advance_schedules
from duet.lightning_modules.optimizer_settings import (
    configured_settings,
    restore_configured_settings,
)
from duet.lightning_modules.steps import (
    average_gradients,
    logging_due,
    manual_gradient_sync,
    record_module_class,
    step_uncounted,
)


def reference_adam(params: Iterable) -> Optimizer:
    """Adam(lr=1e-3, betas=(0.5, 0.999)): the reference's optimizer for both networks.

    ``fused=True`` computes the same update in one kernel for all parameters; on the CPU it makes
    the MLP GAN's optimizer steps ~3× and the DCGAN's ~8× faster than PyTorch's default loop.
    """
    return Adam(params, lr=1e-3, betas=(0.5, 0.999), fused=True)


class GAN(L.LightningModule):
    """Vanilla GAN with MLP networks and binary cross-entropy on logits.

    Each training iteration (one batch of real images x):
      1. discriminator step on D(x) and D(G(z)) for a detached fake batch G(z);
      2. generator step on D(G(z')) for fresh noise z' (its loss also sees step 1's D(x)).

    Args:
        noise_dim: size of the uniform(-1, 1) noise vector (the reference's 96).
        generator, discriminator: builders of the two networks, called as
            ``generator(noise_dim, image_shape)`` and ``discriminator(image_shape)`` (any
            ``nn.Module`` class whose first parameters are these; ``networks/builders.py``).
        generator_loss, discriminator_loss: functions of (D(x), D(G(z))) logits -> scalar loss
            (``gan_losses.py``).
        image_shape: (channels, height, width) of the images; the duet command takes it from
            the DataModule's ``image_shape``.
        generator_optimizer, discriminator_optimizer: callables taking parameters and returning an
            optimizer; default the reference's Adam(1e-3, betas=(0.5, 0.999)).
        ema_decay: if set, keep an exponential moving average of the generator's weights (and
            BatchNorm statistics) with this decay, used for sampling and evaluation.
        loss_limit: stop training when a loss's magnitude exceeds it (a diverging run; see
            ``FiniteGuard``); None for no limit. NaN and infinity always stop training.
        generator_scheduler, discriminator_scheduler: callables taking the optimizer and
            returning a learning-rate scheduler (e.g. ``torch.optim.lr_scheduler.StepLR``), or
            None for a constant rate. Stepped once per ``scheduler_interval``: "iteration" (a
            batch, whichever networks stepped in it) or "epoch"; saved in checkpoints.
        generator_clip_norm, discriminator_clip_norm: clip the network's gradients to this total
            2-norm before each of its steps; None for no clipping. (Lightning's
            ``trainer.gradient_clip_val`` does not apply to manual optimization.)

    Options for small data and steadier training, all off by default (the reference has none):
        augment_translation, augment_cutout: differentiable augmentation of every image the
            discriminator judges, real and fake, in both steps (``DifferentiableAugmentation``):
            the largest shift and the side of the blanked square, as fractions of the image size.
        spectral_norm: spectrally normalise the discriminator's Linear and Conv2d layers.
        r1_weight: γ of the R1 penalty γ/2·mean(‖∇ₓD(x)‖²) on real images, added to the
            discriminator's loss; None for none.
        hinge_loss: the hinge losses (``gan_losses.hinge_*``) instead of generator_loss and
            discriminator_loss.
    """

    evaluation_command = "duet evaluate CHECKPOINT (FID, KID, IS and digit shares; sample: images)"
    COMPONENTS = ("generator", "discriminator", "generator_loss", "discriminator_loss")

    def __init__(
        self,
        noise_dim: int = 96,
        generator: GeneratorBuilder = MLPGenerator,
        discriminator: DiscriminatorBuilder = MLPDiscriminator,
        generator_loss: GANLoss = bce_generator_loss,
        discriminator_loss: GANLoss = bce_discriminator_loss,
        image_shape: ImageShape = REFERENCE_IMAGE_SHAPE,
        generator_optimizer: OptimizerCallable = reference_adam,
        discriminator_optimizer: OptimizerCallable = reference_adam,
        ema_decay: float | None = None,
        loss_limit: float | None = 1e6,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: SchedulerInterval = "iteration",
        generator_clip_norm: float | None = None,
        discriminator_clip_norm: float | None = None,
        augment_translation: float = 0.0,
        augment_cutout: float = 0.0,
        spectral_norm: bool = False,
        r1_weight: float | None = None,
        hinge_loss: bool = False,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        settings.at_least(owner, "noise_dim", noise_dim, 1)
        image_shape = settings.image_shape(owner, image_shape)
        clip_norms = dict(
            discriminator_clip_norm=discriminator_clip_norm, generator_clip_norm=generator_clip_norm
        )
        optimization.check_options(owner, scheduler_interval, clip_norms)
        if loss_limit is not None:
            settings.positive(owner, "loss_limit", loss_limit)
        if ema_decay is not None:
            note = ", or null to turn EMA off"
            settings.between(owner, "ema_decay", ema_decay, 0, 1, closed=False, note=note)
        settings.at_least(owner, "r1_weight", r1_weight, 0, optional=True)
        self.augmentation = augmentation_or_none(owner, augment_translation, augment_cutout)
        settings.learning_rates(owner, "generator_optimizer", generator_optimizer)
        settings.learning_rates(owner, "discriminator_optimizer", discriminator_optimizer)
        self.save_hyperparameters(
            ignore=[
                "generator_optimizer",
                "discriminator_optimizer",
                "generator_scheduler",
                "discriminator_scheduler",
            ]
        )
        describe_for_checkpoints(owner, self.hparams, self.COMPONENTS)
        self.hparams.image_shape = image_shape
        self.automatic_optimization = False
        self.noise_dim, self.image_shape = noise_dim, image_shape
        self.generator = resolve(generator)(noise_dim, image_shape)
        self.discriminator = resolve(discriminator)(image_shape)
        if spectral_norm:
            spectrally_normalised(self.discriminator)
        self.r1_weight = r1_weight
        self.generator_loss: GANLoss = resolve(generator_loss)
        self.discriminator_loss: GANLoss = resolve(discriminator_loss)
        if hinge_loss:
            self.discriminator_loss = hinge_discriminator_loss
            self.generator_loss = hinge_generator_loss
        self.generator_ema = None
        if ema_decay is not None:
            self.generator_ema = AveragedModel(
                self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True
            )
            self.generator_ema.requires_grad_(False)
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        # In the optimizers' order: discriminator, generator.
        self.schedulers = dict(
            discriminator_scheduler=discriminator_scheduler, generator_scheduler=generator_scheduler
        )
        self.scheduler_interval = scheduler_interval
        self.clip_norms = list(clip_norms.values())
        self.rng: torch.Generator | None = None  # noise and other draws of training
        self.finite_guard = FiniteGuard(loss_limit)

    def configure_optimizers(self):
        optimizers = (
            self.discriminator_optimizer(self.discriminator.parameters()),
            self.generator_optimizer(self.generator.parameters()),
        )
        schedulers = optimization.scheduler_configs(
            type(self).__name__, optimizers, self.schedulers
        )
        return optimization.optimizers_with_schedulers(optimizers, schedulers)

    def on_fit_start(self) -> None:
        self.rng = torch.Generator(self.device)
        self.optimizer_settings = configured_settings(self.trainer.optimizers)  # before a resume

    def on_train_start(self) -> None:  # after a resume restored the optimizers
        names = ["discriminator_optimizer", "generator_optimizer"]
        restore_configured_settings(self.trainer.optimizers, self.optimizer_settings, names)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Each process and iteration draws from its own stream, a function of (seed, rank,
        # iteration): processes differ, and a resumed run continues exactly on any device.
        seed = noise_seed(torch.initial_seed(), self.global_rank, self.trainer.global_step)
        self.rng.manual_seed(seed)

    def noise(self, batch_size: int) -> Tensor:
        return sample_noise(batch_size, self.noise_dim, generator=self.rng, device=self.device)

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator to draw samples from: its EMA when that is on."""
        return self.generator if self.generator_ema is None else self.generator_ema.module

    @torch.no_grad()
    def generate(self, noise: Tensor, labels: Tensor | None = None) -> Tensor:
        """(B, noise_dim) noise -> (B, C, H, W) images in [-1, 1], in eval mode. ``labels``
        (B,) are the digits to draw, for a class-conditional GAN; others ignore them."""
        generator = self.sampling_generator
        was_training = generator.training
        generator.eval()
        images = self.draw(generator, noise.to(self.device), labels)
        generator.train(was_training)
        return images

    def draw(self, generator: nn.Module, noise: Tensor, labels: Tensor | None) -> Tensor:
        """The generator's images for ``noise`` (and, in a conditional GAN, ``labels``)."""
        return generator(noise)

    def judge(self, images: Tensor, labels: Tensor) -> Tensor:
        """The discriminator's (B, 1) logits for ``images`` (of ``labels``, if conditional)."""
        return self.discriminator(images)

    def augmented(self, images: Tensor) -> Tensor:
        """``images`` as the discriminator sees them in training: augmented, if that is on."""
        if self.augmentation is None:
            return images
        return self.augmentation(images, self.rng)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, labels = batch  # (B, C, H, W) in [-1, 1], (B,)
        d_optimizer, g_optimizer = self.optimizers()
        advance_schedules(self, self.scheduler_interval)  # a new epoch's rates

        with manual_gradient_sync(self):  # each network's gradients averaged once, before its step
            # 1. Discriminator: real images against a detached fake batch.
            self.toggle_optimizer(d_optimizer)
            fake = self.draw(self.generator, self.noise(len(real)), labels).detach()
            real.requires_grad_(self.r1_weight is not None)  # for R1's gradient with respect to x
            d_real = self.judge(self.augmented(real), labels)  # (B, 1) logits
            d_fake = self.judge(self.augmented(fake), labels)
            d_loss = self.discriminator_loss(d_real, d_fake)
            if self.r1_weight is not None:
                d_loss = d_loss + self.r1_weight / 2 * r1_penalty(d_real, real)
            d_optimizer.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            average_gradients(self, self.discriminator)
            d_optimizer.step()  # the one counted step of this iteration
            self.untoggle_optimizer(d_optimizer)

            # 2. Generator: fresh noise, judged by the updated discriminator.
            g_loss = self.generator_step(g_optimizer, labels, d_real.detach())

        advance_schedules(self, self.scheduler_interval)  # the next iteration's rates

        losses = {"train/d_loss": d_loss, "train/g_loss": g_loss}
        self.finite_guard.after_iteration(self, losses)
        if logging_due(self):
            self.log_dict(losses, prog_bar=True)
            self.log_dict({"train/d_real": d_real.mean(), "train/d_fake": d_fake.mean()})

    def generator_step(self, g_optimizer, labels: Tensor, d_real: Tensor) -> Tensor:
        """One generator update on fresh noise against the current discriminator; its loss.
        ``labels`` (B,) are the batch's digits: what a conditional GAN is asked to draw;
        ``d_real`` (B, 1) the discriminator's detached logits for the real batch."""
        self.toggle_optimizer(g_optimizer)
        fake = self.draw(self.generator, self.noise(len(labels)), labels)
        g_loss = self.generator_loss(d_real, self.judge(self.augmented(fake), labels))
        g_optimizer.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        average_gradients(self, self.generator)
        step_uncounted(g_optimizer)
        self.untoggle_optimizer(g_optimizer)
        self.update_ema()
        return g_loss

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        optimization.clip_gradients(self, optimizer, self.clip_norms)

    def update_ema(self) -> None:
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)

    def on_train_end(self) -> None:
        self.finite_guard.check(self)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.finite_guard.before_checkpoint(self, checkpoint)
        record_module_class(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_state_matches(self, checkpoint)
        warn_of_an_old_noise_state(checkpoint)


class LSGAN(GAN):
    """Least-squares GAN: the MLP networks of GAN with the least-squares losses."""

    def __init__(
        self,
        *,
        generator_loss: GANLoss = ls_generator_loss,
        discriminator_loss: GANLoss = ls_discriminator_loss,
        **options,
    ) -> None:
        super().__init__(
            generator_loss=generator_loss, discriminator_loss=discriminator_loss, **options
        )


class DCGAN(GAN):
    """DCGAN: the reference's conv discriminator and InfoGAN's MNIST generator, with BCE losses."""

    def __init__(
        self,
        *,
        generator: GeneratorBuilder = DCGenerator,
        discriminator: DiscriminatorBuilder = DCDiscriminator,
        **options,
    ) -> None:
        super().__init__(generator=generator, discriminator=discriminator, **options)
