"""A DataModule of random images of any shape, for the GAN modules' shape handling."""

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class RandomImages(L.LightningDataModule):
    """``count`` random images (B, C, H, W) in [-1, 1] with label 0, in batches; it states its
    ``image_shape`` as duet's image DataModules do."""

    def __init__(self, image_shape: tuple[int, int, int] = (3, 32, 32), count: int = 32) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.count = count

    def train_dataloader(self) -> DataLoader:
        images = torch.rand(
            self.count, *self.image_shape, generator=torch.Generator().manual_seed(0)
        )
        dataset = TensorDataset(images * 2 - 1, torch.zeros(self.count, dtype=torch.long))
        return DataLoader(dataset, batch_size=8, drop_last=True)
