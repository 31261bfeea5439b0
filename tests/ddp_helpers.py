"""Importable by the processes a DDP test launches (PYTHONPATH holds the repository)."""

import copy
from pathlib import Path

import lightning as L
import torch

from duet.callbacks import GymCollector


class SaveRankState(L.Callback):
    """At the end of fit, every process saves its module's state_dict as ``rank<N>.pt``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        state = {name: value.detach().cpu() for name, value in pl_module.state_dict().items()}
        torch.save(
            {
                "state": state,
                "global_step": trainer.global_step,
                "world_size": trainer.world_size,
                "metrics": {name: float(value) for name, value in trainer.callback_metrics.items()},
            },
            self.dirpath / f"rank{trainer.global_rank}.pt",
        )


def local_states(trainer: L.Trainer) -> dict:
    """This process's own state: its collector's, its DataModule's and its MNIST sampler's."""
    states = {}
    collectors = [c for c in trainer.callbacks if isinstance(c, GymCollector)]
    if collectors:
        states["collector"] = collectors[0].local_state_dict()
    datamodule = trainer.datamodule
    if hasattr(datamodule, "local_state_dict"):
        states["data"] = datamodule.local_state_dict()
    if getattr(datamodule, "train_sampler", None) is not None:
        states["sampler"] = datamodule.train_sampler.state_dict()
    return states


class RecordRank(L.Callback):
    """Every process records what it draws and collects at each iteration (keyed by the
    iteration's global_step at its start), its own states when training starts (after a
    checkpoint is restored; list it before the collector so that it runs before the prefill)
    and when it ends, its weights and optimizer states, in ``rank<N>.pt``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.draws: dict[int, dict[str, float]] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self.at_start = copy.deepcopy(local_states(trainer))  # the buffer changes in place
        if hasattr(pl_module, "noise"):  # record every noise batch the GAN draws
            draw = pl_module.noise

            def recording_noise(batch_size: int) -> torch.Tensor:
                noise = draw(batch_size)
                self._record(trainer, "noise", noise)
                return noise

            pl_module.noise = recording_noise

    def _record(self, trainer, name: str, value) -> None:
        row = self.draws.setdefault(self.iteration, {})
        row[name] = row.get(name, 0.0) + float(torch.as_tensor(value).double().sum())

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.iteration = trainer.global_step  # it advances with the first step of the iteration
        if isinstance(batch, list | tuple) and len(batch) == 2:  # MNIST images and labels
            self._record(trainer, "real", batch[0])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        row = self.draws.setdefault(self.iteration, {})
        if isinstance(outputs, dict) and "train/a_loss" in outputs:  # the agent's, this batch
            row["a_loss"] = float(outputs["train/a_loss"])
        for collector in (c for c in trainer.callbacks if isinstance(c, GymCollector)):
            row["obs"] = float(collector.obs.sum())

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        weights = {name: value.detach().cpu() for name, value in pl_module.state_dict().items()}
        torch.save(
            {
                "weights": weights,
                "optimizers": [optimizer.state_dict() for optimizer in trainer.optimizers],
                "global_step": trainer.global_step,
                "draws": self.draws,
                "at_start": self.at_start,
                "at_end": local_states(trainer),
                "metrics": {name: float(value) for name, value in trainer.callback_metrics.items()},
            },
            self.dirpath / f"rank{trainer.global_rank}.pt",
        )
