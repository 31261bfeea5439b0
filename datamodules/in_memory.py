"""What duet's image DataModules share: uint8 images held in memory, served a whole batch per
index tensor, shuffled resumably and sharded per process by ``ShuffledBatchSampler``, and scaled
to [-1, 1] on the device."""

import lightning as L
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler
from torchdata.stateful_dataloader import StatefulDataLoader

from duet.datamodules import option_checks
from duet.datamodules.lightning_internals import lightning_shards_batches
from duet.datamodules.sampler import ShuffledBatchSampler


def check_loader_options(owner: str, batch_size: int, val_size: int, num_workers: int) -> None:
    """The options every in-memory image DataModule takes, checked when it is built."""
    option_checks.at_least(owner, "batch_size", batch_size, 1)
    option_checks.at_least(owner, "val_size", val_size, 0)
    option_checks.at_least(owner, "num_workers", num_workers, 0)


class InMemoryImages(Dataset):
    """Images ``(N, C, H, W)`` uint8 and labels ``(N,)`` int64; indexing by a tensor of indices
    returns a whole batch at once, without per-image decoding."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def __getitems__(self, indices):  # DataLoader's batched fetch: one indexing op per batch
        index = torch.as_tensor(indices)
        return self.images[index], self.labels[index]


def built(dataset: InMemoryImages | None, owner: str) -> InMemoryImages:
    """``dataset`` as ``owner.setup`` built it; Lightning runs ``setup`` before any loader, so
    None means a caller skipped it."""
    if dataset is None:
        raise RuntimeError(f"{owner}: call setup() before asking for its loaders or images.")
    return dataset


def already_batched(batch):
    """collate_fn for datasets that return whole batches."""
    return batch


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float (B, C, H, W) in [-1, 1]: the reference's 2x - 1."""
    return images.float().div_(127.5).sub_(1.0)


def processes(owner: str, trainer: L.Trainer | None) -> tuple[int, int]:
    """(world size, rank); the sampler shards batches itself, so Lightning must not."""
    if trainer is None or trainer.world_size == 1:
        return 1, 0
    if lightning_shards_batches(trainer):
        raise ValueError(
            f"{owner} shards its batches across processes itself, resumably: create the Trainer "
            "with use_distributed_sampler=False (duet's CLI does this by default)."
        )
    return trainer.world_size, trainer.global_rank


def shuffled_loader(
    dataset: InMemoryImages, sampler: ShuffledBatchSampler, num_workers: int, pin_memory: bool
) -> StatefulDataLoader:
    """Batches of ``dataset`` in ``sampler``'s order; the loader's state holds its position."""
    return StatefulDataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=already_batched,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )


def ordered_loader(
    dataset: InMemoryImages, batch_size: int, num_workers: int, pin_memory: bool
) -> DataLoader:
    """Batches of ``dataset`` in order, the last one partial: for validation and tests."""
    batches = BatchSampler(SequentialSampler(dataset), batch_size, drop_last=False)
    return DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=already_batched,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
