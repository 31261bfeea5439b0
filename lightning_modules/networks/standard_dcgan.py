"""The DCGAN paper's networks (Radford et al., 2016) for square images of side 4·2^k, e.g. 32
or 64 (the paper's 64×64 layout), in any number of channels.

Generator: the noise as a 1×1 map, ConvT to 4×4 with 8f channels (f = ``width``), then per
doubling of the side ConvT 4×4/2 halving the channels, BatchNorm and ReLU between, Tanh at the
end. Discriminator: the mirror, Conv 4×4/2 doubling the channels with LeakyReLU(0.2) (BatchNorm
after all but the first; ``batch_norm=False`` for a WGAN-GP critic, whose per-sample gradient
penalty BatchNorm would break), and a 4×4 Conv to one logit. Weights N(0, 0.02), BatchNorm
scales N(1, 0.02), as in the paper.
"""

import itertools
import math

from torch import Tensor, nn

from duet.lightning_modules.networks.builders import ImageShape
from duet.lightning_modules.networks.conv import refuse_unless


def doublings(network: str, image_shape: ImageShape) -> int:
    """How many 2× steps take 4×4 to the image's side; refuses other shapes in one line."""
    _, height, width = image_shape
    steps = math.log2(height / 4) if height >= 4 else -1.0
    fits = height == width and steps >= 1 and steps.is_integer()
    refuse_unless(fits, network, image_shape, "square images of side 4·2^k (8, 16, 32, 64, …)")
    return int(steps)


def paper_initialisation(network: nn.Module) -> None:
    for layer in network.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, 0.02)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


class StandardDCGenerator(nn.Module):
    """(B, noise_dim) noise -> (B, C, S, S) images in [-1, 1]; S = 4·2^k. 3,576,704 parameters
    for noise_dim=100, 3×64×64 and width 64 (the paper's)."""

    def __init__(self, noise_dim: int, image_shape: ImageShape, width: int = 64) -> None:
        super().__init__()
        steps = doublings("StandardDCGenerator", image_shape)
        channels = [width * 2 ** (steps - 1 - i) for i in range(steps)]  # 8f, 4f, 2f, f at 64
        layers: list[nn.Module] = [
            nn.Unflatten(1, (noise_dim, 1, 1)),
            nn.ConvTranspose2d(noise_dim, channels[0], 4, 1, 0, bias=False),  # (B, 8f, 4, 4)
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(),
        ]
        for wide, narrow in itertools.pairwise(channels):  # each doubles the side
            layers += [
                nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False),
                nn.BatchNorm2d(narrow),
                nn.ReLU(),
            ]
        layers += [nn.ConvTranspose2d(channels[-1], image_shape[0], 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        paper_initialisation(self.net)

    def forward(self, noise: Tensor) -> Tensor:
        return self.net(noise)


class StandardDCDiscriminator(nn.Module):
    """(B, C, S, S) images -> (B, 1) logits; S = 4·2^k. 2,765,568 parameters for 3×64×64 and
    width 64 (the paper's)."""

    def __init__(self, image_shape: ImageShape, width: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        steps = doublings("StandardDCDiscriminator", image_shape)
        channels = [width * 2**i for i in range(steps)]  # f, 2f, 4f, 8f at 64
        layers: list[nn.Module] = [
            nn.Conv2d(image_shape[0], channels[0], 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2),
        ]
        for narrow, wide in itertools.pairwise(channels):  # each halves the side
            layers.append(nn.Conv2d(narrow, wide, 4, 2, 1, bias=False))
            if batch_norm:
                layers.append(nn.BatchNorm2d(wide))
            layers.append(nn.LeakyReLU(0.2))
        layers += [nn.Conv2d(channels[-1], 1, 4, 1, 0, bias=False), nn.Flatten()]  # (B, 1)
        self.net = nn.Sequential(*layers)
        paper_initialisation(self.net)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)
