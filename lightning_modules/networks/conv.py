"""The reference DCGAN networks: a small conv discriminator and the InfoGAN MNIST generator, built
for the reference's 1×28×28 images or any other square size the layers allow.

The reference initialises both with ``initialize_weights``: Xavier-uniform weights for every
Linear and ConvTranspose2d layer (Conv2d layers and all biases keep PyTorch's defaults).
"""

from torch import Tensor, nn

from duet.lightning_modules.networks.builders import REFERENCE_IMAGE_SHAPE, ImageShape


def reference_initialisation(network: nn.Sequential) -> None:
    """Xavier-uniform weights for the Linear and ConvTranspose2d layers, in order."""
    for layer in network:
        if isinstance(layer, nn.Linear | nn.ConvTranspose2d):
            nn.init.xavier_uniform_(layer.weight)


def refuse_unless(fits: bool, network: str, image_shape: ImageShape, needs: str) -> None:
    if not fits:
        shape = "×".join(map(str, image_shape))
        raise ValueError(
            f"{network} cannot take {shape} images: it needs {needs}. Resize the data "
            "(the DataModule's image size) or choose another network (model.init_args.generator "
            "/ discriminator)."
        )


class DCDiscriminator(nn.Module):
    """Conv 32@5×5, LeakyReLU(0.01), MaxPool 2 -> Conv 64@5×5, LeakyReLU(0.01), MaxPool 2 ->
    Linear 64·h·w→1024, LeakyReLU(0.01), Linear 1024→1. No BatchNorm, so it also serves as a
    WGAN-GP critic, whose per-sample gradient penalty BatchNorm would break.

    (B, C, H, W) or (B, C·H·W) images -> (B, 1) logits; h = ((H − 4) // 2 − 4) // 2, 4 for 28.
    1,102,721 parameters for 1×28×28. Linear weights are Xavier-uniform, as in the reference.
    """

    def __init__(self, image_shape: ImageShape = REFERENCE_IMAGE_SHAPE) -> None:
        super().__init__()
        channels, height, width = image_shape
        h, w = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
        refuse_unless(min(h, w) >= 1, "DCDiscriminator", image_shape, "a height and width of 16+")
        self.image_shape = tuple(image_shape)
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 5),  # (B, 32, 24, 24) for 28×28
            nn.LeakyReLU(0.01),
            nn.MaxPool2d(2, 2),  # (B, 32, 12, 12)
            nn.Conv2d(32, 64, 5),  # (B, 64, 8, 8)
            nn.LeakyReLU(0.01),
            nn.MaxPool2d(2, 2),  # (B, 64, 4, 4)
            nn.Flatten(),  # (B, 1024)
            nn.Linear(64 * h * w, 1024),
            nn.LeakyReLU(0.01),
            nn.Linear(1024, 1),
        )
        reference_initialisation(self.net)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images.view(-1, *self.image_shape))


class DCGenerator(nn.Module):
    """InfoGAN's MNIST generator: Linear noise_dim→1024, ReLU, BN; Linear 1024→128·h·w, ReLU, BN;
    reshape (128, h, w); ConvT 128→64 4×4/2, ReLU, BN; ConvT 64→C 4×4/2, Tanh; h, w = H/4, W/4.

    (B, noise_dim) noise -> (B, C, H, W) images in [-1, 1]; H and W multiples of 4 (7 × 4 = 28).
    6,580,801 parameters for noise_dim=4 and 1×28×28. Linear and ConvTranspose2d weights are
    Xavier-uniform, as in the reference.
    """

    def __init__(
        self, noise_dim: int = 96, image_shape: ImageShape = REFERENCE_IMAGE_SHAPE
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        fits = height % 4 == 0 and width % 4 == 0 and min(height, width) >= 4
        refuse_unless(
            fits, "DCGenerator", image_shape, "a height and width that are multiples of 4"
        )
        h, w = height // 4, width // 4
        self.noise_dim = noise_dim
        self.net = nn.Sequential(
            nn.Linear(noise_dim, 1024),
            nn.ReLU(),
            nn.BatchNorm1d(1024),
            nn.Linear(1024, h * w * 128),
            nn.ReLU(),
            nn.BatchNorm1d(h * w * 128),
            nn.Unflatten(1, (128, h, w)),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),  # (B, 64, 14, 14) for 28×28
            nn.ReLU(),
            nn.BatchNorm2d(64),
            nn.ConvTranspose2d(64, channels, 4, stride=2, padding=1),  # (B, C, 28, 28)
            nn.Tanh(),
        )
        reference_initialisation(self.net)

    def forward(self, noise: Tensor) -> Tensor:
        return self.net(noise)
