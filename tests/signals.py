"""A callback that signals its own process, as a scheduler, Ctrl-C or a crash would."""

import os
import signal

import lightning as L


class SignalAt(L.Callback):
    """Sends ``signum`` to this process at the start of iteration ``iteration`` (from 1); under
    several processes, only to the process of global rank ``rank`` when one is given."""

    def __init__(
        self, iteration: int, signum: int = int(signal.SIGTERM), rank: int | None = None
    ) -> None:
        self.iteration, self.signum, self.rank = iteration, signum, rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        if trainer.global_step + 1 == self.iteration:
            os.kill(os.getpid(), self.signum)


def signalled_at(iteration: int, signum: int, rank: int | None = None) -> list[str]:
    """Command-line options that add a SignalAt to a run's callbacks."""
    options = [
        "--trainer.callbacks+=tests.signals.SignalAt",
        f"--trainer.callbacks.init_args.iteration={iteration}",
        f"--trainer.callbacks.init_args.signum={int(signum)}",
    ]
    return options if rank is None else [*options, f"--trainer.callbacks.init_args.rank={rank}"]
