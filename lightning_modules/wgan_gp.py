"""WGAN-GP (Gulrajani et al., 2017) on the DCGAN networks, with manual optimization."""

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from duet.datamodules import option_checks
from duet.lightning_modules.gan import GAN
from duet.lightning_modules.gan_losses import (
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from duet.lightning_modules.gan_options import Stabilizers
from duet.lightning_modules.networks import DCDiscriminator, DCGenerator
from duet.lightning_modules.networks.builders import (
    DiscriminatorBuilder,
    GANLoss,
    GeneratorBuilder,
)
from duet.lightning_modules.option_groups import as_group
from duet.lightning_modules.reference_optimizers import WGANGPAdam
from duet.lightning_modules.steps import (
    average_gradients,
    manual_gradient_sync,
)

wgan_gp_adam = WGANGPAdam  # its name before 0.3, which saved configs may hold


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
        penalty_weight: λ (paper: 10); the critic's loss is ``discriminator_loss`` plus λ times
            the gradient penalty.
        Every other option is GAN's, with the DCGAN networks, the Wasserstein losses and
        Adam(1e-4, betas=(0, 0.9)) as defaults. A scheduler with interval "iteration" counts
        iterations (critic steps), also the generator's. The penalty is the critic's
        regularizer: GAN's augmentation and R1 penalty are refused.
    """

    UNSUPPORTED = ("augment_translation", "augment_cutout", "r1_weight")  # of the stabilizers

    def __init__(
        self,
        *,
        n_critic: int = 5,
        penalty_weight: float = 10.0,
        generator: GeneratorBuilder = DCGenerator,
        discriminator: DiscriminatorBuilder = DCDiscriminator,
        generator_loss: GANLoss = wasserstein_generator_loss,
        discriminator_loss: GANLoss = wasserstein_critic_loss,
        generator_optimizer: OptimizerCallable = WGANGPAdam,
        discriminator_optimizer: OptimizerCallable = WGANGPAdam,
        **options,
    ) -> None:
        option_checks.at_least("WGANGP", "n_critic", n_critic, 1)
        option_checks.at_least("WGANGP", "penalty_weight", penalty_weight, 0)
        stabilizers = as_group(Stabilizers, options.get("stabilizers"))
        for name in self.UNSUPPORTED:
            if getattr(stabilizers, name):
                raise ValueError(
                    f"WGANGP does not take stabilizers.{name}={getattr(stabilizers, name)!r}: its "
                    "critic is regularised by the gradient penalty (penalty_weight); drop the "
                    "option or use GAN or DCGAN."
                )
        super().__init__(
            generator=generator,
            discriminator=discriminator,
            generator_loss=generator_loss,
            discriminator_loss=discriminator_loss,
            generator_optimizer=generator_optimizer,
            discriminator_optimizer=discriminator_optimizer,
            **options,
        )
        self.n_critic = n_critic
        self.penalty_weight = penalty_weight
        self.latest_g_loss: Tensor | None = None

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, labels = batch  # (B, C, H, W) in [-1, 1]
        critic_optimizer, g_optimizer = self.optimizer_list()
        self.advance_schedules()  # a new epoch's rates

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

        self.advance_schedules()  # the next iteration's rates

        details = {
            "train/d_real": d_real.mean(),
            "train/d_fake": d_fake.mean(),
            "train/wasserstein": wasserstein,
            "train/gradient_penalty": penalty,
        }
        self.finish_iteration(losses, details)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.latest_g_loss is not None:  # logged at every iteration until the next G step
            checkpoint["latest_g_loss"] = self.latest_g_loss.detach().cpu()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        latest = checkpoint.get("latest_g_loss")
        self.latest_g_loss = None if latest is None else latest.to(self.device)
