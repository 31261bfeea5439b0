"""The reference DCGAN networks: a small conv discriminator and the InfoGAN MNIST generator.

The reference initialises both with ``initialize_weights``: Xavier-uniform weights for every
Linear and ConvTranspose2d layer (Conv2d layers and all biases keep PyTorch's defaults).
"""

from torch import Tensor, nn

from duet.lightning_modules.networks.mlp import IMAGE_SHAPE


def reference_initialisation(network: nn.Sequential) -> None:
    """Xavier-uniform weights for the Linear and ConvTranspose2d layers, in order."""
    for layer in network:
        if isinstance(layer, nn.Linear | nn.ConvTranspose2d):
            nn.init.xavier_uniform_(layer.weight)


class DCDiscriminator(nn.Module):
    """Conv 32@5×5, LeakyReLU(0.01), MaxPool 2 -> Conv 64@5×5, LeakyReLU(0.01), MaxPool 2 ->
    Linear 1024→1024, LeakyReLU(0.01), Linear 1024→1. No BatchNorm, so it also serves as a WGAN-GP
    critic, whose per-sample gradient penalty BatchNorm would break.

    (B, 1, 28, 28) or (B, 784) images -> (B, 1) logits. 1,102,721 parameters.
    Linear weights are Xavier-uniform, as in the reference.
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 5),  # (B, 32, 24, 24)
            nn.LeakyReLU(0.01),
            nn.MaxPool2d(2, 2),  # (B, 32, 12, 12)
            nn.Conv2d(32, 64, 5),  # (B, 64, 8, 8)
            nn.LeakyReLU(0.01),
            nn.MaxPool2d(2, 2),  # (B, 64, 4, 4)
            nn.Flatten(),  # (B, 1024)
            nn.Linear(4 * 4 * 64, 1024),
            nn.LeakyReLU(0.01),
            nn.Linear(1024, 1),
        )
        reference_initialisation(self.net)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images.view(-1, *IMAGE_SHAPE))


class DCGenerator(nn.Module):
    """InfoGAN's MNIST generator: Linear noise_dim→1024, ReLU, BN; Linear 1024→7·7·128, ReLU, BN;
    reshape (128, 7, 7); ConvT 128→64 4×4/2, ReLU, BN; ConvT 64→1 4×4/2, Tanh.

    (B, noise_dim) noise -> (B, 1, 28, 28) images in [-1, 1]. 6,580,801 parameters for noise_dim=4.
    Linear and ConvTranspose2d weights are Xavier-uniform, as in the reference.
    """

    def __init__(self, noise_dim: int = 96) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(
            nn.Linear(noise_dim, 1024),
            nn.ReLU(),
            nn.BatchNorm1d(1024),
            nn.Linear(1024, 7 * 7 * 128),
            nn.ReLU(),
            nn.BatchNorm1d(7 * 7 * 128),
            nn.Unflatten(1, (128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),  # (B, 64, 14, 14)
            nn.ReLU(),
            nn.BatchNorm2d(64),
            nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1),  # (B, 1, 28, 28)
            nn.Tanh(),
        )
        reference_initialisation(self.net)

    def forward(self, noise: Tensor) -> Tensor:
        return self.net(noise)
