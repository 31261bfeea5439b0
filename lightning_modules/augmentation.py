"""Differentiable augmentation of the discriminator's inputs (Zhao et al., 2020, "DiffAugment").

On a small training set the discriminator memorises the real images and stops teaching the
generator. Augmenting every image it sees, real and fake alike, with transformations that
gradients pass through keeps it from memorising without teaching the generator to draw them:
the generator is judged through the same augmentation.
"""

import torch
from torch import Tensor

from duet.datamodules import option_checks

BACKGROUND = -1.0  # MNIST's background in the [-1, 1] range the networks see


class DifferentiableAugmentation:
    """Random translation and cutout, drawn independently for each image.

    Args:
        translation: the largest shift, as a fraction of the image size (0.125: 3 pixels of 28),
            at most 0.5; uncovered pixels are background. 0 turns it off.
        cutout: the side of the square set to background, as a fraction of the image size (0.5:
            14 pixels), at most 1, placed uniformly so that it may overhang the border. 0 turns
            it off.
    """

    def __init__(self, translation: float = 0.125, cutout: float = 0.5) -> None:
        self.translation = translation
        self.cutout = cutout

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B, C, H, W) images -> (B, C, H, W) augmented images; gradients flow to ``images``."""
        images = translate(images, round(images.shape[-1] * self.translation), generator)
        return cut_out(images, round(images.shape[-1] * self.cutout), generator)

    def __repr__(self) -> str:
        return f"DifferentiableAugmentation(translation={self.translation}, cutout={self.cutout})"


def augmentation_or_none(
    owner: str, translation: float, cutout: float
) -> DifferentiableAugmentation | None:
    """The augmentation a GAN's ``stabilizers.augment_translation`` and
    ``stabilizers.augment_cutout`` ask for (checked, naming them), or None when both are 0."""
    option_checks.between(owner, "stabilizers.augment_translation", translation, 0, 0.5)
    option_checks.between(owner, "stabilizers.augment_cutout", cutout, 0, 1)
    return DifferentiableAugmentation(translation, cutout) if translation or cutout else None


def translate(images: Tensor, shift: int, generator: torch.Generator | None) -> Tensor:
    """Each image moved by its own integer (dy, dx) in [-shift, shift]², background filling in."""
    if shift == 0:
        return images
    batch, _, height, width = images.shape
    offsets = torch.randint(
        -shift, shift + 1, (2, batch), generator=generator, device=images.device
    )
    padded = torch.nn.functional.pad(images, (shift,) * 4, value=BACKGROUND)
    rows = torch.arange(height, device=images.device) + shift - offsets[0, :, None]  # (B, H)
    cols = torch.arange(width, device=images.device) + shift - offsets[1, :, None]  # (B, W)
    index = torch.arange(batch, device=images.device)[:, None, None]
    moved = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return moved.permute(0, 3, 1, 2)


def cut_out(images: Tensor, size: int, generator: torch.Generator | None) -> Tensor:
    """Each image with a size × size square at its own random place set to background."""
    if size == 0:
        return images
    batch, _, height, width = images.shape
    corner_y, corner_x = (
        torch.randint(
            -(size // 2),
            extent - size // 2 + 1,
            (batch, 1),
            generator=generator,
            device=images.device,
        )
        for extent in (height, width)
    )
    rows = torch.arange(height, device=images.device)  # (H,)
    cols = torch.arange(width, device=images.device)
    inside_rows = (rows >= corner_y) & (rows < corner_y + size)  # (B, H)
    inside_cols = (cols >= corner_x) & (cols < corner_x + size)  # (B, W)
    covered = (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]  # (B, 1, H, W)
    return images.masked_fill(covered, BACKGROUND)
