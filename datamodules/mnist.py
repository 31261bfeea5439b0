"""MNIST (or Fashion-MNIST, KMNIST: the same format) held in memory as uint8 tensors, served in
whole batches by index, resumable mid-epoch."""

import os
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader
from torchvision.datasets import KMNIST, MNIST, FashionMNIST

from duet.datamodules.idx import (
    MNIST_FILES,
    MNISTFilesError,
    check_mnist_files,
    missing_files,
    raw_folder,
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

FULL_TRAIN_SIZE = 60_000
# Datasets in MNIST's format (60,000 + 10,000 28×28 grey images, 10 classes), by torchvision name.
DATASETS = {"MNIST": MNIST, "FashionMNIST": FashionMNIST, "KMNIST": KMNIST}
DatasetName = Literal["MNIST", "FashionMNIST", "KMNIST"]


class MNISTDataModule(L.LightningDataModule):
    """A train/validation split of the official training set, and the official test set, of MNIST
    or of a dataset in its format: Fashion-MNIST (clothing) or KMNIST (Japanese characters).

    Batches are ``(images, labels)`` with images float ``(B, 1, 28, 28)`` in [-1, 1]. They travel
    to the device as uint8 and are scaled there (``on_after_batch_transfer``): a quarter of the
    bytes.

    Args:
        data_dir: folder holding ``<dataset>/raw/`` in torchvision's layout (``MNIST/raw/``).
        dataset: "MNIST", "FashionMNIST" or "KMNIST"; downloaded by torchvision when missing.
        batch_size: the reference's 128.
        val_size: images of the training set held out for validation (default 5,000 of 60,000).
            When that leaves fewer than half the images for training (a small MNIST subset), the
            split falls back to the same fraction, 1/12, and says so.
        split_seed: seed of the train/validation split.
        shuffle_seed: seed of the training order; ``None`` takes ``torch.initial_seed()``, which
            LightningCLI's ``seed_everything`` sets.
        download: fetch MNIST when files are missing.
    """

    image_shape = (1, 28, 28)  # (channels, height, width): what the GAN modules are built for

    def __init__(
        self,
        data_dir: str = "data/",
        dataset: DatasetName = "MNIST",
        batch_size: int = 128,
        val_size: int = 5_000,
        split_seed: int = 0,
        shuffle_seed: int | None = None,
        download: bool = True,
        drop_last: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise ValueError(
                f"MNISTDataModule: dataset={dataset!r} is not one of {', '.join(DATASETS)} (the "
                "datasets in MNIST's format that torchvision downloads)."
            )
        check_loader_options("MNISTDataModule", batch_size, val_size, num_workers)
        self.save_hyperparameters()
        self.data_dir = Path(data_dir)
        self.dataset_name = dataset
        self.dataset_class = DATASETS[dataset]
        self.batch_size, self.val_size = batch_size, val_size
        self.split_seed, self.shuffle_seed = split_seed, shuffle_seed
        self.download, self.drop_last = download, drop_last
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.raw_folder = raw_folder(data_dir, dataset)
        self.train_set: InMemoryImages | None = None
        self.val_set: InMemoryImages | None = None
        self.test_set: InMemoryImages | None = None
        self.train_sampler: ShuffledBatchSampler | None = None

    def prepare_data(self) -> None:
        if not missing_files(self.raw_folder):
            return
        if not self.download:
            raise MNISTFilesError(self._missing_message("download=False"))
        self._check_writable()
        try:
            self.dataset_class(self.data_dir, train=True, download=True)
            self.dataset_class(self.data_dir, train=False, download=True)
        except Exception as error:  # torchvision raises several kinds on a failed fetch
            raise MNISTFilesError(self._missing_message(f"the download failed: {error}")) from error

    def setup(self, stage: str) -> None:
        if missing_files(self.raw_folder):
            raise MNISTFilesError(self._missing_message("prepare_data did not provide them"))
        check_mnist_files(self.raw_folder)
        if stage in ("fit", "validate") and self.train_set is None:
            self.train_set, self.val_set = self._split(
                self.dataset_class(self.data_dir, train=True)
            )
        if stage in ("test", "predict") and self.test_set is None:
            test = self.dataset_class(self.data_dir, train=False)
            self.test_set = InMemoryImages(test.data.unsqueeze(1), test.targets)

    def _split(self, train: MNIST) -> tuple[InMemoryImages, InMemoryImages]:  # or a subclass
        images, labels = train.data.unsqueeze(1), train.targets  # (N, 1, 28, 28) uint8, (N,)
        num_val = self.val_size
        if num_val > len(labels) // 2:
            num_val = len(labels) * 5_000 // FULL_TRAIN_SIZE
            rank_zero_warn(
                f"val_size={self.val_size} leaves too few of the {len(labels)} training "
                f"images in {self.raw_folder} for training; using {len(labels) - num_val} for "
                f"training and {num_val} for validation (the full-MNIST ratio, 1/12)."
            )
        order = torch.randperm(
            len(labels), generator=torch.Generator().manual_seed(self.split_seed)
        )
        val_index, train_index = order[:num_val], order[num_val:]
        return (
            InMemoryImages(images[train_index], labels[train_index]),
            InMemoryImages(images[val_index], labels[val_index]),
        )

    def train_dataloader(self) -> StatefulDataLoader:
        train_set = built(self.train_set, "MNISTDataModule")
        if self.train_sampler is None:  # one for the whole fit, so its epoch counter advances
            seed = self.shuffle_seed
            world_size, rank = processes("MNISTDataModule", self.trainer)
            self.train_sampler = ShuffledBatchSampler(
                len(train_set),
                self.batch_size,
                self.drop_last,
                seed=torch.initial_seed() if seed is None else seed,
                num_replicas=world_size,
                rank=rank,
            )
        return shuffled_loader(train_set, self.train_sampler, self.num_workers, self.pin_memory)

    def val_dataloader(self) -> DataLoader:
        return self._in_order(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._in_order(self.test_set)

    def _in_order(self, dataset: InMemoryImages | None) -> DataLoader:
        dataset = built(dataset, "MNISTDataModule")
        return ordered_loader(dataset, self.batch_size, self.num_workers, self.pin_memory)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        return to_unit_range(images), labels

    def _check_writable(self) -> None:
        existing = next(p for p in (self.data_dir, *self.data_dir.parents) if p.exists())
        if not os.access(existing, os.W_OK):
            raise MNISTFilesError(
                f"{self.dataset_name} must be downloaded, but {existing} is not writable, so "
                f"nothing can be saved under {self.data_dir}. Pass a writable folder with "
                f"--data.data_dir DIR, or put the four IDX files ({', '.join(MNIST_FILES)}) into "
                f"{self.raw_folder}."
            )

    def _missing_message(self, reason: str) -> str:
        missing = ", ".join(missing_files(self.raw_folder))
        name = self.dataset_name
        return (
            f"{name} is not in {self.raw_folder.resolve()} (missing: {missing}) and {reason}. "
            f"Put the four uncompressed IDX files ({', '.join(MNIST_FILES)}) there, or point to a "
            f"folder that holds {name}/raw/ with --data.data_dir DIR (on a machine without "
            f"internet, a copy made where {name} could be downloaded)."
        )
