"""A callback that signals its own process, as a scheduler or Ctrl-C would."""

import os
import signal

import lightning as L


class SignalAt(L.Callback):
    """Sends ``signum`` to this process at the start of iteration ``iteration`` (from 1)."""

    def __init__(self, iteration: int, signum: int = int(signal.SIGTERM)) -> None:
        self.iteration, self.signum = iteration, signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step + 1 == self.iteration:
            os.kill(os.getpid(), self.signum)
