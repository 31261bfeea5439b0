"""Importable by the processes a DDP test launches (PYTHONPATH holds the repository)."""

from pathlib import Path

import lightning as L
import torch


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
