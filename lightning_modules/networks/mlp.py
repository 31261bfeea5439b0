"""The reference's fully connected generator and discriminator, for images of any shape (the
reference's are MNIST's 1×28×28)."""

from torch import Tensor, nn

from duet.lightning_modules.networks.builders import REFERENCE_IMAGE_SHAPE, ImageShape, pixels


class MLPDiscriminator(nn.Module):
    """Linear C·H·W→256, LeakyReLU(0.01), Linear 256→256, LeakyReLU(0.01), Linear 256→1.

    (B, C, H, W) or (B, C·H·W) images in [-1, 1] -> (B, 1) logits. 267,009 parameters for
    1×28×28.
    """

    def __init__(self, image_shape: ImageShape = REFERENCE_IMAGE_SHAPE) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(pixels(image_shape), 256),
            nn.LeakyReLU(0.01),
            nn.Linear(256, 256),
            nn.LeakyReLU(0.01),
            nn.Linear(256, 1),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)


class MLPGenerator(nn.Module):
    """Linear noise_dim→1024, ReLU, Linear 1024→1024, ReLU, Linear 1024→C·H·W, Tanh.

    (B, noise_dim) noise -> (B, C, H, W) images in [-1, 1]. 1,858,320 parameters for noise_dim=4
    and 1×28×28.
    """

    def __init__(
        self, noise_dim: int = 96, image_shape: ImageShape = REFERENCE_IMAGE_SHAPE
    ) -> None:
        super().__init__()
        self.noise_dim, self.image_shape = noise_dim, tuple(image_shape)
        self.net = nn.Sequential(
            nn.Linear(noise_dim, 1024),
            nn.ReLU(),
            nn.Linear(1024, 1024),
            nn.ReLU(),
            nn.Linear(1024, pixels(image_shape)),
            nn.Tanh(),
        )

    def forward(self, noise: Tensor) -> Tensor:
        return self.net(noise).view(-1, *self.image_shape)
