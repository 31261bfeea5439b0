"""A preallocated ring buffer of rated transitions, and an IterableDataset of batches from it."""

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import IterableDataset

from duet.datamodules.rating import UNRATED

_REDRAW_ROUNDS = 4  # of rejection sampling, before listing the rated slots


class Transitions(NamedTuple):
    """A batch of B transitions; states are (B, S), everything else (B,). ``rate`` is each
    transition's success rating in [0, 1] (``duet.datamodules.rating``), the Q heads' target."""

    prev_action: Tensor
    state: Tensor
    action: Tensor
    next_state: Tensor
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    rate: Tensor

    def to(self, device) -> "Transitions":
        return Transitions(*(field.to(device, non_blocking=True) for field in self))


class ReplayBuffer:
    """Ring buffer of ``capacity`` transitions held in preallocated tensors.

    Each transition carries the id of its episode and, in the "rate" column, its success rating
    (``duet.datamodules.rating``), −1 until that episode ends; then ``rate`` gives its transitions
    their ratings. ``sample`` draws uniformly among rated transitions only. Writes go through
    NumPy views of the tensors, which cost a microsecond instead of a tensor indexing call.
    """

    def __init__(self, capacity: int, state_size: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.state_size = state_size
        self.tensors = {
            "prev_action": torch.zeros(capacity, dtype=torch.int64),
            "state": torch.zeros(capacity, state_size),
            "action": torch.zeros(capacity, dtype=torch.int64),
            "next_state": torch.zeros(capacity, state_size),
            "reward": torch.zeros(capacity),
            "terminated": torch.zeros(capacity, dtype=torch.bool),
            "truncated": torch.zeros(capacity, dtype=torch.bool),
            "rate": torch.full((capacity,), UNRATED),
            "episode": torch.full((capacity,), -1, dtype=torch.int64),
        }
        self.arrays = {name: tensor.numpy() for name, tensor in self.tensors.items()}
        self.position = 0  # next slot to write
        self.size = 0  # filled slots

    def __len__(self) -> int:
        return self.size

    def add(
        self, episode, prev_action, state, action, next_state, reward, terminated, truncated
    ) -> np.ndarray:
        """Append n transitions (arrays with a leading dimension n, states (n, S)), unrated;
        returns the (n,) slots they were written to."""
        n, start = len(episode), self.position
        slots = np.arange(start, start + n)
        wraps = start + n > self.capacity
        if wraps:
            slots %= self.capacity
        # A slice writes the n consecutive slots faster than an index array does.
        rows = slots if wraps else slice(start, start + n)
        arrays = self.arrays
        arrays["episode"][rows] = episode
        arrays["prev_action"][rows] = prev_action
        arrays["state"][rows] = state
        arrays["action"][rows] = action
        arrays["next_state"][rows] = next_state
        arrays["reward"][rows] = reward
        arrays["terminated"][rows] = terminated
        arrays["truncated"][rows] = truncated
        arrays["rate"][rows] = UNRATED
        self.position = (start + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        return slots

    def rate(self, episode: int, slots: np.ndarray, ratings) -> int:
        """Rate the transitions that ``episode`` wrote to ``slots`` (n,), in the order written,
        with ``ratings`` (one rating, or (n,)). Slots the ring has since overwritten with other
        episodes keep their own ratings. Returns how many transitions were rated."""
        episodes = self.arrays["episode"]
        if len(slots) and episodes[slots[0]] == episode:
            # The oldest is still there, so are the later ones: the ring overwrites in order.
            self.arrays["rate"][slots] = ratings
            return len(slots)
        still_there = episodes[slots] == episode
        ratings = np.broadcast_to(ratings, still_there.shape)
        self.arrays["rate"][slots[still_there]] = ratings[still_there]
        return int(still_there.sum())

    def num_rated(self) -> int:
        return int((self.tensors["rate"][: self.size] >= 0).sum())

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Transitions:
        """B transitions drawn uniformly, with replacement, among the rated ones.

        Rejection sampling: draw among all stored transitions and redraw the unrated ones (the
        episodes still running, a small share of the buffer). It avoids listing the rated slots
        of the whole buffer at every batch; after a few rounds it lists them after all.
        """
        ratings = self.tensors["rate"]
        if self.size == 0:
            raise RuntimeError(
                "The replay buffer is empty: nothing was collected before the first batch. "
                "Prefill it (GymCollector.prefill_steps) so that some episodes end first."
            )
        index = torch.randint(self.size, (batch_size,), generator=generator)
        unrated = ratings.index_select(0, index) < 0  # index_select: half ratings[index]'s cost
        for _ in range(_REDRAW_ROUNDS):
            if not unrated.any():
                break
            index[unrated] = torch.randint(self.size, (int(unrated.sum()),), generator=generator)
            unrated = ratings.index_select(0, index) < 0
        if unrated.any():
            rated = (ratings[: self.size] >= 0).nonzero().squeeze(1)  # (R,)
            if len(rated) == 0:
                raise RuntimeError(
                    f"The replay buffer holds {self.size} transitions but none is rated yet: no "
                    "episode has ended. Prefill it with more steps (GymCollector.prefill_steps) "
                    "before training."
                )
            redraw = torch.randint(len(rated), (int(unrated.sum()),), generator=generator)
            index[unrated] = rated[redraw]
        return Transitions(
            *(self.tensors[name].index_select(0, index) for name in Transitions._fields)
        )

    def state_dict(self) -> dict:
        return {"tensors": dict(self.tensors), "position": self.position, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        for name, tensor in self.tensors.items():
            loaded = state["tensors"][name]
            if loaded.shape != tensor.shape:
                raise ValueError(
                    f"replay buffer field '{name}' has shape {tuple(loaded.shape)} in the "
                    f"checkpoint but {tuple(tensor.shape)} here: capacity or state size differ."
                )
            tensor.copy_(loaded)  # in place, so the NumPy views stay valid
        self.position, self.size = state["position"], state["size"]


class ReplayDataset(IterableDataset):
    """Yields ``batches_per_epoch`` batches of ``batch_size`` sampled from a live ReplayBuffer
    (indefinitely when ``batches_per_epoch`` is None). The buffer keeps filling while training
    runs, so this dataset must be read in the main process (``num_workers=0``)."""

    def __init__(
        self,
        buffer: ReplayBuffer,
        batch_size: int,
        batches_per_epoch: int | None,
        generator: torch.Generator,
    ) -> None:
        self.buffer = buffer
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.generator = generator

    def __iter__(self) -> Iterator[Transitions]:
        count = 0
        while self.batches_per_epoch is None or count < self.batches_per_epoch:
            count += 1
            yield self.buffer.sample(self.batch_size, self.generator)

    def __len__(self) -> int:
        if self.batches_per_epoch is None:
            raise TypeError("an endless ReplayDataset has no length")
        return self.batches_per_epoch
