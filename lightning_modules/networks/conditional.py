"""Class-conditional versions of the reference MLP networks: the generator is given the digit,
and the discriminator judges an image as an image of that digit (a projection discriminator,
Miyato and Koyama, 2018)."""

import torch
from torch import Tensor, nn

from duet.lightning_modules.networks.builders import REFERENCE_IMAGE_SHAPE, ImageShape
from duet.lightning_modules.networks.mlp import MLPDiscriminator, MLPGenerator


class ConditionalMLPGenerator(nn.Module):
    """The reference MLP generator on [noise, one-hot digit]: Linear (noise_dim + 10)→1024, ReLU,
    Linear 1024→1024, ReLU, Linear 1024→C·H·W, Tanh.

    (B, noise_dim) noise, (B,) int64 labels -> (B, C, H, W) images in [-1, 1].
    """

    def __init__(
        self,
        noise_dim: int = 96,
        image_shape: ImageShape = REFERENCE_IMAGE_SHAPE,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.noise_dim, self.num_classes = noise_dim, num_classes
        self.body = MLPGenerator(noise_dim + num_classes, image_shape)

    def forward(self, noise: Tensor, labels: Tensor) -> Tensor:
        one_hot = nn.functional.one_hot(labels, self.num_classes).to(noise.dtype)
        return self.body(torch.cat([noise, one_hot], dim=1))


class ProjectionMLPDiscriminator(nn.Module):
    """The reference MLP discriminator's layers φ (784→256→256, LeakyReLU 0.01) and head ψ
    (256→1), plus a learned embedding e of each class: D(x, y) = ψ(φ(x)) + e(y)·φ(x).

    (B, C, H, W) or (B, C·H·W) images, (B,) int64 labels -> (B, 1) logits.
    """

    def __init__(
        self, image_shape: ImageShape = REFERENCE_IMAGE_SHAPE, num_classes: int = 10
    ) -> None:
        super().__init__()
        reference = MLPDiscriminator(image_shape).net
        self.features, self.head = reference[:-1], reference[-1]  # φ: (B, 256); ψ: (B, 1)
        assert isinstance(self.head, nn.Linear)
        self.embed = nn.Embedding(num_classes, self.head.in_features)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        features = self.features(images)
        projection = (self.embed(labels) * features).sum(dim=1, keepdim=True)
        return self.head(features) + projection


def balanced_labels(count: int, num_classes: int = 10) -> Tensor:
    """(count,) labels in order, each class an equal share (within one): 0, 0, …, 9, 9."""
    return torch.arange(count) * num_classes // count
