"""A shuffling batch sampler that resumes mid-epoch exactly."""

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ShuffledBatchSampler(Sampler[torch.Tensor]):
    """Yields index tensors of shape ``(batch_size,)`` from a fresh permutation each epoch.

    Epoch ``e`` uses the permutation drawn from a generator seeded with ``seed + e``, so the order
    depends only on ``(seed, epoch)``. With ``num_replicas`` processes, each takes every
    ``num_replicas``-th index of that permutation from ``rank`` on (equal shares, so all processes
    run the same number of batches). ``state_dict`` records the epoch and how many batches of it
    were handed out; ``load_state_dict`` makes the next iteration continue from there.
    ``StatefulDataLoader`` saves and restores this state with the loader.

    Because process r takes positions r, r + num_replicas, … of the permutation, the first k
    batches of all processes together are exactly its first k·batch_size·num_replicas indices.
    A state saved by another number of processes therefore continues after the same number of
    images of the epoch (rounded down to a whole batch of every process: a few images may be
    seen twice, none is skipped).
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        drop_last: bool,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if drop_last and num_items < batch_size:
            raise ValueError(
                f"batch_size {batch_size} is larger than the {num_items} items to sample from, and "
                "drop_last=True would leave no batch: lower batch_size or set drop_last=False."
            )
        self.num_items = num_items
        self.num_replicas, self.rank = num_replicas, rank
        self.share = num_items // num_replicas  # indices per process
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        self.batches_done = 0  # batches of `epoch` already handed out

    def __len__(self) -> int:
        if self.drop_last:
            return self.share // self.batch_size
        return -(-self.share // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.batches_done >= len(self):
            # Lightning stops after len(loader) batches without exhausting the iterator, so the
            # epoch that was fully handed out is closed here.
            self.epoch += 1
            self.batches_done = 0
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        permutation = torch.randperm(self.num_items, generator=generator)
        permutation = permutation[self.rank :: self.num_replicas][: self.share]
        while self.batches_done < len(self):
            start = self.batches_done * self.batch_size
            self.batches_done += 1
            yield permutation[start : start + self.batch_size]
        self.epoch += 1
        self.batches_done = 0

    def state_dict(self) -> dict[str, int]:
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch = state["seed"], state["epoch"]
        saved_replicas = state.get("num_replicas", self.num_replicas)
        images_done = state["batches_done"] * self.batch_size * saved_replicas
        self.batches_done = images_done // (self.batch_size * self.num_replicas)
