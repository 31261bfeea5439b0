"""GAN, LSGAN and DCGAN: the reference's ``run_a_gan`` as LightningModules with manual optimization.

The variants differ only in the defaults of their networks and their two loss functions, which
any config can replace (``networks/builders.py``).
"""

from typing import ClassVar

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from duet.datamodules import option_checks
from duet.datamodules.lightning_internals import step_uncounted
from duet.lightning_modules.augmentation import augmentation_or_none
from duet.lightning_modules.checkpoints import warn_of_an_old_noise_state
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
from duet.lightning_modules.gan_options import GANOptimization, Stabilizers
from duet.lightning_modules.manual_optimization import ManualOptimizationModule, OptimizerPlan
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
    describe,
    describe_for_checkpoints,
    resolve,
)
from duet.lightning_modules.networks.spectral_norm import spectrally_normalised
from duet.lightning_modules.option_groups import as_group, stored_settings
from duet.lightning_modules.reference_optimizers import ReferenceAdam
from duet.lightning_modules.steps import average_gradients, manual_gradient_sync

reference_adam = ReferenceAdam  # its name before 0.3, which saved configs may hold


class GAN(ManualOptimizationModule):
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
        optimization: schedulers, gradient clipping and the loss limit (``GANOptimization``).
        stabilizers: EMA of the generator, augmentation, spectral norm and the R1 penalty, all
            off by default as in the reference (``Stabilizers``).
    """

    evaluation_command = "duet evaluate CHECKPOINT (FID, KID, IS and digit shares; sample: images)"
    COMPONENTS = ("generator", "discriminator", "generator_loss", "discriminator_loss")
    OPTION_GROUPS: ClassVar[dict[str, type]] = {
        "optimization": GANOptimization,
        "stabilizers": Stabilizers,
    }

    def __init__(
        self,
        noise_dim: int = 96,
        generator: GeneratorBuilder = MLPGenerator,
        discriminator: DiscriminatorBuilder = MLPDiscriminator,
        generator_loss: GANLoss = bce_generator_loss,
        discriminator_loss: GANLoss = bce_discriminator_loss,
        image_shape: ImageShape = REFERENCE_IMAGE_SHAPE,
        generator_optimizer: OptimizerCallable = ReferenceAdam,
        discriminator_optimizer: OptimizerCallable = ReferenceAdam,
        optimization: GANOptimization = GANOptimization(),
        stabilizers: Stabilizers = Stabilizers(),
    ) -> None:
        optimization = as_group(GANOptimization, optimization)
        stabilizers = as_group(Stabilizers, stabilizers)
        super().__init__(optimization)
        owner = type(self).__name__
        option_checks.at_least(owner, "noise_dim", noise_dim, 1)
        image_shape = option_checks.image_shape(owner, image_shape)
        stabilizers.check(owner)
        self.augmentation = augmentation_or_none(
            owner, stabilizers.augment_translation, stabilizers.augment_cutout
        )
        option_checks.learning_rates(owner, "generator_optimizer", generator_optimizer)
        option_checks.learning_rates(owner, "discriminator_optimizer", discriminator_optimizer)
        self.save_hyperparameters(ignore=["generator_optimizer", "discriminator_optimizer"])
        describe_for_checkpoints(owner, self.hparams, self.COMPONENTS)
        self.hparams["image_shape"] = image_shape
        self.hparams["optimization"] = stored_settings(optimization)
        self.hparams["stabilizers"] = stored_settings(stabilizers)
        self.noise_dim, self.image_shape = noise_dim, image_shape
        self.generator = resolve(generator)(noise_dim, image_shape)
        self.discriminator = resolve(discriminator)(image_shape)
        if stabilizers.spectral_norm:
            spectrally_normalised(self.discriminator)
        self.r1_weight = stabilizers.r1_weight
        self.generator_loss: GANLoss = resolve(generator_loss)
        self.discriminator_loss: GANLoss = resolve(discriminator_loss)
        self.generator_ema = None
        if stabilizers.ema_decay is not None:
            self.generator_ema = AveragedModel(
                self.generator,
                multi_avg_fn=get_ema_multi_avg_fn(stabilizers.ema_decay),
                use_buffers=True,
            )
            self.generator_ema.requires_grad_(False)
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.optimization = optimization
        self.rng: torch.Generator | None = None  # noise and other draws of training

    @classmethod
    def upgrade_options(cls, hparams: dict) -> dict:
        """duet 0.2's ``hinge_loss: true`` as the hinge loss functions it chose."""
        hparams = dict(hparams)
        if hparams.pop("hinge_loss", False):
            hparams["generator_loss"] = describe(hinge_generator_loss)
            hparams["discriminator_loss"] = describe(hinge_discriminator_loss)
        return super().upgrade_options(hparams)

    def optimizer_plans(self) -> list[OptimizerPlan]:
        """The discriminator's optimizer, then the generator's."""
        options = self.optimization
        return [
            OptimizerPlan(
                self.discriminator_optimizer(self.discriminator.parameters()),
                "discriminator_optimizer",
                options.discriminator_scheduler,
                "optimization.discriminator_scheduler",
                options.discriminator_clip_norm,
            ),
            OptimizerPlan(
                self.generator_optimizer(self.generator.parameters()),
                "generator_optimizer",
                options.generator_scheduler,
                "optimization.generator_scheduler",
                options.generator_clip_norm,
            ),
        ]

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.rng = torch.Generator(self.device)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Each process and iteration draws from its own stream, a function of (seed, rank,
        # iteration): processes differ, and a resumed run continues exactly on any device.
        seed = noise_seed(torch.initial_seed(), self.global_rank, self.trainer.global_step)
        assert self.rng is not None  # on_fit_start made it
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
        d_optimizer, g_optimizer = self.optimizer_list()
        self.advance_schedules()  # a new epoch's rates

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

        self.advance_schedules()  # the next iteration's rates

        losses = {"train/d_loss": d_loss, "train/g_loss": g_loss}
        self.finish_iteration(
            losses, {"train/d_real": d_real.mean(), "train/d_fake": d_fake.mean()}
        )

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

    def update_ema(self) -> None:
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
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
