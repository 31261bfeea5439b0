"""Shared fixtures: small MNIST folders written in the exact IDX format, and thread settings."""

import os
from pathlib import Path

import pytest
import torch

# Deliberate thread count: tests run in one process; multi-process tests set their own.
torch.set_num_threads(int(os.environ.get("DUET_TEST_THREADS", "2")))


def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file: magic 0x0000080N, N big-endian sizes, then the bytes."""
    header = (0x0800 + array.dim()).to_bytes(4, "big")
    header += b"".join(size.to_bytes(4, "big") for size in array.shape)
    path.write_bytes(header + array.contiguous().numpy().tobytes())


def write_mnist(
    root: Path, num_train: int = 300, num_test: int = 100, seed: int = 0, dataset: str = "MNIST"
) -> Path:
    """A fake MNIST (or a dataset in its format: ``dataset`` names the folder) in torchvision's
    layout (root/<dataset>/raw/*-ubyte) with random digits."""
    raw = root / dataset / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    for prefix, count in (("train", num_train), ("t10k", num_test)):
        images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, 10, (count,), dtype=torch.uint8, generator=generator)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    return write_mnist(tmp_path / "mnist")


def tiny_trainer(root: Path, **kwargs):
    """A quiet CPU Trainer for a few steps, writing under ``root``."""
    import lightning as L

    options = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=root,
    )
    options.update(kwargs)
    return L.Trainer(**options)


def tiny_mnist(data_dir: Path, batch_size: int = 16):
    from duet.datamodules import MNISTDataModule

    return MNISTDataModule(str(data_dir), batch_size=batch_size, val_size=50, shuffle_seed=0)
