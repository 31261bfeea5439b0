"""The reference's fully connected generator and discriminator for flattened 28×28 images."""

from torch import Tensor, nn

IMAGE_SHAPE = (1, 28, 28)
IMAGE_SIZE = 28 * 28


class MLPDiscriminator(nn.Module):
    """Linear 784→256, LeakyReLU(0.01), Linear 256→256, LeakyReLU(0.01), Linear 256→1.

    (B, 1, 28, 28) or (B, 784) images in [-1, 1] -> (B, 1) logits. 267,009 parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(IMAGE_SIZE, 256),
            nn.LeakyReLU(0.01),
            nn.Linear(256, 256),
            nn.LeakyReLU(0.01),
            nn.Linear(256, 1),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)


class MLPGenerator(nn.Module):
    """Linear noise_dim→1024, ReLU, Linear 1024→1024, ReLU, Linear 1024→784, Tanh.

    (B, noise_dim) noise -> (B, 1, 28, 28) images in [-1, 1]. 1,858,320 parameters for noise_dim=4.
    """

    def __init__(self, noise_dim: int = 96) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(
            nn.Linear(noise_dim, 1024),
            nn.ReLU(),
            nn.Linear(1024, 1024),
            nn.ReLU(),
            nn.Linear(1024, IMAGE_SIZE),
            nn.Tanh(),
        )

    def forward(self, noise: Tensor) -> Tensor:
        return self.net(noise).view(-1, *IMAGE_SHAPE)
