"""A LeNet-style MNIST classifier whose penultimate layer is the feature space of FID and KID."""

from torch import Tensor, nn


class LeNet(nn.Module):
    """Conv 32@5×5 (pad 2), ReLU, MaxPool 2 -> Conv 64@5×5 (pad 2), ReLU, MaxPool 2 ->
    Linear 3136→``feature_size``, ReLU, Dropout -> Linear →10.

    (B, 1, 28, 28) images in [-1, 1] -> (B, 10) logits; ``features`` gives the (B, feature_size)
    penultimate activations.
    """

    def __init__(self, feature_size: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.feature_size = feature_size
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2),  # (B, 32, 28, 28)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 5, padding=2),  # (B, 64, 14, 14)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(),  # (B, 3136)
            nn.Linear(7 * 7 * 64, feature_size),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_size, 10)

    def features(self, images: Tensor) -> Tensor:
        return self.body(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.dropout(self.features(images)))
