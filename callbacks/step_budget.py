"""A warning when the epoch limit will end a run before the iteration limit the user set."""

import math

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn


class WarnUnreachableMaxSteps(L.Callback):
    """At the start of fit, warns when ``trainer.max_epochs`` ends training before
    ``trainer.max_steps`` is reached: a config's ``max_epochs: 10`` on a small data set quietly
    stops a ``--trainer.max_steps 100`` run after a few dozen iterations. Every duet module takes
    one global step per training batch. The duet command adds it to every run.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        max_steps, max_epochs = trainer.max_steps, trainer.max_epochs
        batches = trainer.num_training_batches
        if max_steps < 0 or max_epochs is None or max_epochs < 0 or math.isinf(batches):
            return
        reachable = max_epochs * batches  # also after a resume: one global step per batch
        if reachable < max_steps:
            rank_zero_warn(
                f"trainer.max_steps={max_steps} will not be reached: trainer.max_epochs="
                f"{max_epochs} ends the run after iteration {reachable} ({batches} iterations an "
                "epoch); set --trainer.max_epochs -1 to train by iterations alone."
            )
