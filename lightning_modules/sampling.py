"""Samples of a GAN-family checkpoint, as ``duet sample`` and ``duet evaluate`` draw them."""

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from duet.lightning_modules.checkpoints import CheckpointError, load_duet_module
from duet.lightning_modules.conditional_gan import ConditionalGAN
from duet.lightning_modules.gan import GAN
from duet.lightning_modules.gan_losses import sample_noise


@runtime_checkable
class SampleSource(Protocol):
    """A module that draws images from noise: the GAN family, or any module with these two."""

    noise_dim: int

    def generate(self, noise: torch.Tensor) -> torch.Tensor:
        """(B, noise_dim) noise -> (B, C, H, W) images in [-1, 1]."""
        ...


def sample_source(module: object, owner: str) -> SampleSource:
    """``module``, refused in one line unless it is a ``SampleSource`` (``owner``: the callback
    that draws from it)."""
    if not isinstance(module, SampleSource):
        raise TypeError(
            f"{owner} draws from a GAN module (one with noise_dim and generate()), but the "
            f"model is a {type(module).__name__}. Remove {owner} from trainer.callbacks."
        )
    return module


def load_generator_module(checkpoint_path: Path, device: str = "cpu") -> GAN:
    """The GAN-family module saved in ``checkpoint_path``, in eval mode on ``device``."""
    return load_generator(checkpoint_path, device)[0]


def load_generator(checkpoint_path: Path, device: str = "cpu") -> tuple[GAN, dict]:
    """The GAN-family module saved in ``checkpoint_path``, in eval mode on ``device``, and the
    checkpoint it came from."""
    what = "one of the GAN family (GAN, LSGAN, DCGAN, WGANGP, ConditionalGAN): a generator"
    return load_duet_module(checkpoint_path, GAN, what, device)


def draw(module: GAN, num: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """(num, 1, 28, 28) float samples in [0, 1]; ``labels`` (num,) for a conditional GAN."""
    noise = sample_noise(num, module.noise_dim, generator=torch.Generator().manual_seed(seed))
    return ((module.generate(noise, labels) + 1) / 2).clamp_(0, 1).cpu()


def digits_to_draw(module: GAN, num: int, digit: int | None) -> tuple[torch.Tensor | None, int]:
    """(labels or None, grid row length): digit ``digit`` ``num`` times, or for a conditional GAN
    without one, ten rows of ceil(num / 10), one digit a row."""
    conditional = isinstance(module, ConditionalGAN)
    if digit is not None and not conditional:
        raise CheckpointError(
            f"--digit {digit}: this checkpoint's {type(module).__name__} is not class-conditional; "
            "train one with configs/cgan.yaml, or leave --digit out."
        )
    if digit is not None:
        return torch.full((num,), digit), max(1, int(num**0.5))
    if conditional:
        per_digit = -(-num // 10)
        return torch.arange(10).repeat_interleave(per_digit), per_digit
    return None, max(1, int(num**0.5))
