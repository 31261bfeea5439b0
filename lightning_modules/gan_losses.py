"""GAN noise and losses as small pure functions of discriminator outputs.

``real`` is D(x) and ``fake`` is D(G(z)), each a tensor of logits (or critic values) of shape
(B, 1) or (B,). Every loss is a scalar averaged over the minibatch, and every loss takes both:
in the generator's step ``real`` holds D(x) of the iteration's real images as the discriminator
judged them in its own step, a constant for the generator (most generator losses ignore it; a
relativistic one compares against it). Any function of this signature is a loss a config can name
(``model.init_args.generator_loss: mypackage.losses.my_loss``).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sample_noise(
    batch_size: int, dim: int, generator: torch.Generator | None = None, device=None
) -> Tensor:
    """Uniform noise in (-1, 1) of shape (batch_size, dim)."""
    return torch.rand(batch_size, dim, generator=generator, device=device) * 2 - 1


def noise_seed(seed: int, rank: int, iteration: int) -> int:
    """The seed of the random draws (noise, interpolation weights) of one process in one
    training iteration: a well-mixed 64-bit function of the three, so that every process and
    every iteration has its own stream, and a resumed run draws what an uninterrupted one would
    on any device (no generator state to carry between CPU and GPU)."""
    return int(np.random.SeedSequence([seed, rank, iteration]).generate_state(1, np.uint64)[0])


def bce_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """BCE(D(x), 1) + BCE(D(G(z)), 0), on logits."""
    real_loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
    fake_loss = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return real_loss + fake_loss


def bce_generator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """BCE(D(G(z)), 1): the non-saturating generator objective."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def ls_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """½·mean((D(x) − 1)²) + ½·mean(D(G(z))²)."""
    return 0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean()


def ls_generator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """½·mean((D(G(z)) − 1)²)."""
    return 0.5 * (fake - 1).square().mean()


def hinge_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """mean(relu(1 − D(x))) + mean(relu(1 + D(G(z)))): the hinge loss of SAGAN and BigGAN, which
    stops pushing on images the discriminator already judges beyond a margin."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_generator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """−mean(D(G(z))): the generator's side of the hinge loss."""
    return -fake.mean()


def relativistic_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """BCE(D(x) − mean D(G(z)), 1) + BCE(D(G(z)) − mean D(x), 0): the relativistic average
    loss (RaSGAN, Jolicoeur-Martineau, 2018): is a real image more real than the average fake?"""
    return bce_discriminator_loss(real - fake.mean(), fake - real.mean())


def relativistic_generator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """BCE(D(G(z)) − mean D(x), 1) + BCE(D(x) − mean D(G(z)), 0): the generator's side of the
    relativistic average loss, with the real logits as constants."""
    real = real.detach()
    return bce_discriminator_loss(fake - real.mean(), real - fake.mean())


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """mean(‖∇ₓ D(x)‖²) over the real images (Mescheder et al., 2018), to be weighted by γ/2.

    ``real`` (B, ...) must require gradients and ``real_logits`` (B, 1) be D's output for it; the
    graph is kept so that the penalty trains the discriminator.
    """
    (gradients,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return gradients.flatten(1).square().sum(dim=1).mean()


def wasserstein_critic_loss(real: Tensor, fake: Tensor) -> Tensor:
    """mean(D(G(z))) − mean(D(x)), without the gradient penalty."""
    return fake.mean() - real.mean()


def wasserstein_generator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """−mean(D(G(z)))."""
    return -fake.mean()


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, mix: Tensor) -> Tensor:
    """mean((‖∇ D(x̂)‖₂ − 1)²) on interpolates x̂ = mix·x + (1 − mix)·G(z).

    ``real`` and ``fake`` are images (B, ...), ``mix`` is (B,) in [0, 1]. The graph is kept
    (``create_graph``) so the penalty can be differentiated with respect to the critic.
    """
    mix = mix.view(-1, *([1] * (real.dim() - 1)))
    interpolates = (mix * real + (1 - mix) * fake).requires_grad_(True)
    (gradients,) = torch.autograd.grad(critic(interpolates).sum(), interpolates, create_graph=True)
    return (gradients.flatten(1).norm(2, dim=1) - 1).square().mean()
