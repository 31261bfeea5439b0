"""Any images for the GAN modules: a folder, a tensor file or a torchvision dataset, held in
memory at one size, served like MNIST (resumable mid-epoch, sharded per process)."""

from pathlib import Path
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from duet.datamodules import option_checks
from duet.datamodules.image_sources import (
    ImageSourceError,
    is_torchvision_dataset,
    read_folder,
    read_tensor_file,
    read_torchvision,
    torchvision_dataset,
)
from duet.datamodules.in_memory import (
    InMemoryImages,
    built,
    check_loader_options,
    ordered_loader,
    processes,
    shuffled_loader,
    to_unit_range,
)
from duet.datamodules.sampler import ShuffledBatchSampler


class ImageDataModule(L.LightningDataModule):
    """Batches ``(images, labels)``, images float ``(B, channels, image_size, image_size)`` in
    [-1, 1] (uint8 until they reach the device, as MNIST's).

    Args:
        source: where the images are: a folder of image files (with class sub-folders, their
            sorted names give the labels 0, 1, …; without, every label is 0), a ``.pt`` tensor
            file (images (N, C, H, W) uint8 or float in [0, 1], or a dict with "images" and
            "labels"), or the name of a torchvision dataset (``CIFAR10``, ``SVHN``, ``CelebA``,
            …; its training part), downloaded into ``data_dir`` when missing.
        image_size: the side of the square images: each is resized so that its shorter side is
            this long, then centre-cropped.
        channels: 3 (RGB) or 1 (grey); images of the other kind are converted.
        data_dir: the folder torchvision datasets are read from and downloaded into.
        batch_size, val_size, split_seed, shuffle_seed, download, drop_last, num_workers,
            pin_memory: as for MNISTDataModule; ``val_size`` images are held out for validation
            (none by default).
    """

    def __init__(
        self,
        source: str,
        image_size: int = 64,
        channels: Literal[1, 3] = 3,
        data_dir: str = "data/",
        batch_size: int = 128,
        val_size: int = 0,
        split_seed: int = 0,
        shuffle_seed: int | None = None,
        download: bool = True,
        drop_last: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        option_checks.at_least("ImageDataModule", "image_size", image_size, 4)
        option_checks.require("ImageDataModule", "channels", channels, channels in (1, 3), "1 or 3")
        check_loader_options("ImageDataModule", batch_size, val_size, num_workers)
        is_file_or_folder = Path(source).exists()
        if not is_file_or_folder and not is_torchvision_dataset(source):
            raise ImageSourceError(
                f"ImageDataModule source={source}: no such folder or file, and not the name of "
                "a torchvision dataset (e.g. CIFAR10, SVHN, CelebA)."
            )
        self.save_hyperparameters()
        self.source, self.image_size, self.channels = source, image_size, channels
        self.data_dir, self.download = data_dir, download
        self.batch_size, self.val_size = batch_size, val_size
        self.split_seed, self.shuffle_seed = split_seed, shuffle_seed
        self.drop_last, self.num_workers, self.pin_memory = drop_last, num_workers, pin_memory
        self.train_set: InMemoryImages | None = None
        self.val_set: InMemoryImages | None = None
        self.train_sampler: ShuffledBatchSampler | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every image: what the GAN modules build networks for."""
        return (self.channels, self.image_size, self.image_size)

    def prepare_data(self) -> None:
        source = self.source
        if not Path(source).exists() and self.download:  # a torchvision dataset
            try:
                torchvision_dataset(source, Path(self.data_dir), download=True)
            except (RuntimeError, OSError) as error:
                raise ImageSourceError(
                    f"ImageDataModule source={source}: the download into "
                    f"{self.data_dir} failed ({error}); set data_dir to a folder "
                    "holding the dataset."
                ) from error

    def setup(self, stage: str) -> None:
        if self.train_set is None:
            images, labels = self.read()
            self.train_set, self.val_set = self.split(images, labels)

    def read(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image of the source, uint8 (N, C, S, S), and its label (N,)."""
        path = Path(self.source)
        if path.is_dir():
            return read_folder(path, self.image_size, self.channels)
        if path.is_file():
            return read_tensor_file(path, self.image_size, self.channels)
        data_dir = Path(self.data_dir)
        return read_torchvision(self.source, data_dir, self.image_size, self.channels, False)

    def split(self, images, labels) -> tuple[InMemoryImages, InMemoryImages]:
        num_val = self.val_size
        if num_val >= len(labels):
            raise ImageSourceError(
                f"ImageDataModule val_size={num_val} holds out all {len(labels)} images of "
                f"{self.source}: lower val_size."
            )
        generator = torch.Generator().manual_seed(self.split_seed)
        order = torch.randperm(len(labels), generator=generator)
        val, train = order[:num_val], order[num_val:]
        return InMemoryImages(images[train], labels[train]), InMemoryImages(
            images[val], labels[val]
        )

    def train_dataloader(self) -> StatefulDataLoader:
        train_set = built(self.train_set, "ImageDataModule")
        if self.train_sampler is None:  # one for the whole fit, so its epoch counter advances
            world_size, rank = processes("ImageDataModule", self.trainer)
            seed = torch.initial_seed() if self.shuffle_seed is None else self.shuffle_seed
            self.train_sampler = ShuffledBatchSampler(
                len(train_set), self.batch_size, self.drop_last, seed, world_size, rank
            )
        return shuffled_loader(train_set, self.train_sampler, self.num_workers, self.pin_memory)

    def val_dataloader(self) -> DataLoader:
        val_set = built(self.val_set, "ImageDataModule")
        return ordered_loader(val_set, self.batch_size, self.num_workers, self.pin_memory)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        return to_unit_range(images), labels
