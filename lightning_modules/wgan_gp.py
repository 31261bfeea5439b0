"""WGAN-GP (Gulrajani et al., 2017) on the DCGAN networks, with manual optimization."""

from collections.abc import Iterable

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torch.optim import Adam, Optimizer

from duet.datamodules import settings
from duet.lightning_modules.gan import GAN
from duet.lightning_modules.gan_losses import (
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from duet.lightning_modules.networks import DCDiscriminator, DCGenerator
from duet.lightning_modules.networks.builders import (
    REFERENCE_IMAGE_SHAPE,
    DiscriminatorBuilder,
    GANLoss,
    GeneratorBuilder,
    ImageShape,
)
from duet.lightning_modules.optimization import SchedulerInterval, advance_schedules
from duet.lightning_modules.steps import (
    average_gradients,
    logging_due,
    manual_gradient_sync,
)


def wgan_gp_adam(params: Iterable) -> Optimizer:
    """Adam(lr=1e-4, betas=(0, 0.9)), the WGAN-GP paper's optimizer (fused, as in gan.py)."""
    return Adam(params, lr=1e-4, betas=(0.0, 0.9), fused=True)


class WGANGP(GAN):
    """WGAN with gradient penalty. The critic is the DCGAN discriminator, which has no BatchNorm.

    Each training iteration (one batch of real images x) is one critic step, so every critic step
    sees fresh real images, as in the paper's algorithm; every ``n_critic``-th iteration is followed
    by one generator step:
      1. critic: mean(D(G(z))) − mean(D(x)) + λ·mean((‖∇D(x̂)‖ − 1)²), x̂ random interpolates;
      2. if the iteration index is a multiple of n_critic (counting from 1): generator
         −mean(D(G(z'))) for fresh noise z'.

    Args:
        n_critic: critic steps per generator step (paper: 5).
        The critic's loss is ``discriminator_loss`` plus λ times the gradient penalty.
        penalty_weight: λ (paper: 10).
        Other arguments as for GAN; optimizers default to Adam(1e-4, betas=(0, 0.9)). A scheduler
        with interval "iteration" counts iterations (critic steps), also the generator's.
    """

    def __init__(
        self,
        noise_dim: int = 96,
        generator: GeneratorBuilder = DCGenerator,
        discriminator: DiscriminatorBuilder = DCDiscriminator,
        generator_loss: GANLoss = wasserstein_generator_loss,
        discriminator_loss: GANLoss = wasserstein_critic_loss,
        image_shape: ImageShape = REFERENCE_IMAGE_SHAPE,
        n_critic: int = 5,
        penalty_weight: float = 10.0,
        generator_optimizer: OptimizerCallable = wgan_gp_adam,
        discriminator_optimizer: OptimizerCallable = wgan_gp_adam,
        ema_decay: float | None = None,
        loss_limit: float | None = 1e6,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: SchedulerInterval = "iteration",
        generator_clip_norm: float | None = None,
        discriminator_clip_norm: float | None = None,
    ) -> None:
        settings.at_least("WGANGP", "n_critic", n_critic, 1)
        settings.at_least("WGANGP", "penalty_weight", penalty_weight, 0)
        super().__init__(
            noise_dim=noise_dim,
            generator=generator,
            discriminator=discriminator,
            generator_loss=generator_loss,
            discriminator_loss=discriminator_loss,
            image_shape=image_shape,
            generator_optimizer=generator_optimizer,
            discriminator_optimizer=discriminator_optimizer,
            ema_decay=ema_decay,
            loss_limit=loss_limit,
            generator_scheduler=generator_scheduler,
            discriminator_scheduler=discriminator_scheduler,
            scheduler_interval=scheduler_interval,
            generator_clip_norm=generator_clip_norm,
            discriminator_clip_norm=discriminator_clip_norm,
        )
        self.n_critic = n_critic
        self.penalty_weight = penalty_weight
        self.latest_g_loss: Tensor | None = None

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, labels = batch  # (B, C, H, W) in [-1, 1]
        critic_optimizer, g_optimizer = self.optimizers()
        advance_schedules(self, self.scheduler_interval)  # a new epoch's rates

        with manual_gradient_sync(self):  # each network's gradients averaged once, before its step
            # 1. Critic step with the gradient penalty on random interpolates.
            self.toggle_optimizer(critic_optimizer)
            fake = self.generator(self.noise(len(real))).detach()
            d_real, d_fake = self.discriminator(real), self.discriminator(fake)  # (B, 1)
            mix = torch.rand(len(real), generator=self.rng, device=self.device)  # (B,)
            # In float32 under mixed precision: the penalty differentiates a gradient norm near
            # 1, which float16 would round and a loss scaler would not protect.
            with torch.autocast(self.device.type, enabled=False):
                penalty = gradient_penalty(self.discriminator, real.float(), fake.float(), mix)
            wasserstein = d_real.mean() - d_fake.mean()  # the critic's estimate of W(real, fake)
            d_loss = self.discriminator_loss(d_real, d_fake) + self.penalty_weight * penalty
            critic_optimizer.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            average_gradients(self, self.discriminator)
            critic_optimizer.step()  # the one counted step of this iteration
            self.untoggle_optimizer(critic_optimizer)
            losses = {"train/d_loss": d_loss}

            # 2. Generator step after every n_critic critic steps.
            if self.trainer.global_step % self.n_critic == 0:
                self.latest_g_loss = self.generator_step(g_optimizer, labels, d_real.detach())
            if self.latest_g_loss is not None:  # whether or not this iteration stepped G
                losses["train/g_loss"] = self.latest_g_loss

        advance_schedules(self, self.scheduler_interval)  # the next iteration's rates

        self.finite_guard.after_iteration(self, losses)
        if logging_due(self):
            self.log_dict(losses, prog_bar=True)
            self.log_dict(
                {
                    "train/d_real": d_real.mean(),
                    "train/d_fake": d_fake.mean(),
                    "train/wasserstein": wasserstein,
                    "train/gradient_penalty": penalty,
                }
            )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.latest_g_loss is not None:  # logged at every iteration until the next G step
            checkpoint["latest_g_loss"] = self.latest_g_loss.detach().cpu()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        latest = checkpoint.get("latest_g_loss")
        self.latest_g_loss = None if latest is None else latest.to(self.device)
