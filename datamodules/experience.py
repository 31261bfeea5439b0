"""The DataModule that serves batches of experience from a replay buffer."""

import lightning as L
import torch
from torch.utils.data import DataLoader

from duet.datamodules import option_checks
from duet.datamodules.process_state import gather_processes, own_state
from duet.datamodules.replay import ReplayBuffer, ReplayDataset


class ExperienceDataModule(L.LightningDataModule):
    """Batches of rated transitions from a ReplayBuffer that a collector callback fills.

    The buffer is allocated by ``build_buffer(state_size)`` once the environment is known (the
    GymCollector does this in its ``setup``). Under DDP every process has its own buffer and its
    own sampling generator (seeded with seed + rank); checkpoints carry those of every process
    (``duet.datamodules.process_state``).

    Args:
        capacity: transitions the buffer holds (reference: 100,000).
        batch_size: transitions per training batch (reference: 1,000).
        batches_per_epoch: training iterations per epoch; None for one endless epoch.
        seed: seed of the batch sampling (process r uses seed + r); None takes
            ``torch.initial_seed()``.
    """

    def __init__(
        self,
        capacity: int = 100_000,
        batch_size: int = 1_000,
        batches_per_epoch: int | None = 1_000,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        option_checks.at_least("ExperienceDataModule", "batch_size", batch_size, 1)
        option_checks.at_least(
            "ExperienceDataModule", "batches_per_epoch", batches_per_epoch, 1, True
        )
        if capacity < batch_size:
            raise ValueError(
                f"ExperienceDataModule capacity={capacity} is smaller than batch_size="
                f"{batch_size}: the replay buffer must hold at least one batch. Raise capacity or "
                "lower batch_size."
            )
        self.save_hyperparameters()  # for the checkpoint; read below as typed attributes
        self.capacity = capacity
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.buffer: ReplayBuffer | None = None
        self.seed = torch.initial_seed() if seed is None else seed
        self.generator = torch.Generator().manual_seed(self.seed)
        self._seeded_for_rank = False
        self._pending_state: dict | None = None

    def setup(self, stage: str) -> None:
        # Once: a checkpoint loaded after set-up replaces the generator's state.
        if not self._seeded_for_rank and self.trainer is not None:
            self.generator.manual_seed(self.seed + self.trainer.global_rank)
            self._seeded_for_rank = True

    def build_buffer(self, state_size: int) -> ReplayBuffer:
        if self.buffer is None or self.buffer.state_size != state_size:
            self.buffer = ReplayBuffer(self.capacity, state_size)
            if self._pending_state is not None:  # a checkpoint loaded before the env was known
                self.buffer.load_state_dict(self._pending_state)
                self._pending_state = None
        return self.buffer

    def train_dataloader(self) -> DataLoader:
        if self.buffer is None:
            raise RuntimeError(
                "ExperienceDataModule has no replay buffer: add a GymCollector to "
                "trainer.callbacks; it builds and fills the buffer."
            )
        dataset = ReplayDataset(
            self.buffer, self.batch_size, self.batches_per_epoch, self.generator
        )
        return DataLoader(dataset, batch_size=None, num_workers=0)  # batch_size=None: no collation

    def state_dict(self) -> dict:
        """Every process's buffer and generator, on process 0 (a collective under DDP)."""
        return {"processes": gather_processes(self.local_state_dict())}

    def load_state_dict(self, state: dict) -> None:
        local = own_state(state)
        if local is not None:  # else this process keeps its fresh buffer and generator
            self.load_local_state_dict(local)

    def local_state_dict(self) -> dict:
        """This process's sampling generator and replay buffer."""
        state: dict = {"generator": self.generator.get_state()}
        if self.buffer is not None:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_local_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        if "buffer" in state:
            if self.buffer is None:
                self._pending_state = state["buffer"]
            else:
                self.buffer.load_state_dict(state["buffer"])
