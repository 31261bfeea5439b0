"""Ctrl-C, preemption and SLURM's pre-timeout signal stop training between two iterations, on
every process at the same one, so that the state saved then resumes exactly; the process ends
with the conventional status 128 + the signal."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.exceptions import SIGTERMException

from duet.datamodules.lightning_internals import (
    cluster_environment,
    stop_after_this_iteration,
    stop_watching_child_processes,
)

Handler = Callable[[int, FrameType | None], Any] | int | None
MAX_STRETCH = 1000  # iterations between two agreements at most, however fast they are


class Interrupted(Exception):
    """Training stopped by ``signum`` (after iteration ``iteration``); the command line ends
    with ``exit_status``, and says so on the first process only (``quiet`` elsewhere:
    scripts/errors.py)."""

    def __init__(
        self, signum: int, iteration: int | None = None, note: str = "", quiet: bool = False
    ) -> None:
        self.signum, self.iteration, self.quiet = signum, iteration, quiet
        self.exit_status = 128 + signum
        after = "" if iteration is None else f" after iteration {iteration}"
        super().__init__(f"training stopped by {signal.Signals(signum).name}{after}{note}")


def interrupted(stop: SIGTERMException) -> Interrupted:
    """Lightning's stop at the end of an iteration (a SystemExit with status 0) as duet's."""
    return Interrupted(
        getattr(stop, "duet_signal", signal.SIGTERM),
        getattr(stop, "duet_iteration", None),
        getattr(stop, "duet_note", ""),
        quiet=getattr(stop, "duet_rank", 0) != 0,
    )


class StopBetweenIterations(L.Callback):
    """Takes over the signals that ask training to stop: SIGTERM (preemption), SIGINT (Ctrl-C;
    a second one stops at once) and, under SLURM with auto-requeue, the requeue signal
    (``#SBATCH --signal=USR1@90``). A handler only records the signal. One process checks
    after every iteration. Several processes agree whether any received one in a small
    all-reduce, and if so all of them stop after the same iteration; they agree about every
    ``agree_every_seconds`` of training rather than after every iteration (an all-reduce per
    iteration costs a visible share of a small model's iteration under gloo: BENCHMARKS.md), so
    a stop comes that much later at most. The stop is Lightning's own SIGTERM stop, which
    ``CheckpointOnException`` saves on every process alike. Lightning's handlers would stop each
    process where its own signal found it, run a collective inside a signal handler, and save
    SLURM's checkpoint mid-iteration.

    After a requeue signal, the first process requeues the job (``scontrol requeue``) once the
    state is saved; the requeued job resumes it (scripts/config_checks.py).
    """

    def __init__(self, agree_every_seconds: float = 0.5) -> None:
        self.agree_every_seconds = agree_every_seconds
        self.received: int | None = None
        self.stretch = 1  # iterations from one agreement of the processes to the next
        self.done = 0  # of those, done
        self.since = 0.0  # when the first of them began
        self.requeue_signal: int | None = None
        self.previous: dict[int, Handler] = {}  # the handlers ours replaced, restored at the end

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A SIGTERM that Lightning's handler took before this one (in the agent's prefill) joins
        # the first agreement, so that every process stops after the same iteration.
        self.received = signal.SIGTERM if trainer.received_sigterm else None
        self.stretch, self.done, self.since = 1, 0, time.monotonic()
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set there
        if not callable(signal.getsignal(signal.SIGTERM)):  # Lightning's stop is not there
            return
        environment = cluster_environment(trainer)
        if isinstance(environment, SLURMEnvironment) and environment.auto_requeue:
            self.requeue_signal = environment.requeue_signal
        for signum in (signal.SIGTERM, signal.SIGINT, self.requeue_signal):
            if signum is not None:
                self.previous[signum] = signal.signal(signum, self._receive)

    def _receive(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.received is not None:  # the second Ctrl-C
            self._restore()
            raise KeyboardInterrupt
        if signum == signal.SIGINT:
            print(
                "\nCtrl-C: stopping after this iteration (again to stop at once).", file=sys.stderr
            )
        self.received = self.received or signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.world_size == 1:
            stop = self.received is not None
        else:
            self.done += 1
            if self.done < self.stretch:
                return
            stop = self._agree(trainer)
        if stop:
            stop_watching_child_processes()  # the children will exit 128 + signal: no loss
            stop_after_this_iteration(trainer)

    def _agree(self, trainer: L.Trainer) -> bool:
        """Whether any process received a signal. Also sets the next stretch from the slowest
        process's pace over this one, so that it is the same on every process."""
        elapsed = time.monotonic() - self.since
        flags = torch.tensor(
            [float(self.received is not None), elapsed], device=trainer.strategy.root_device
        )
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        received, slowest = flags.tolist()
        per_iteration = max(slowest / self.done, 1e-6)
        fitting = int(self.agree_every_seconds / per_iteration)
        self.stretch = min(MAX_STRETCH, max(1, fitting))
        self.done, self.since = 0, time.monotonic()
        return received > 0

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        signum = self.received or signal.SIGTERM  # another process's signal stopped this one
        note = ""
        if signum == self.requeue_signal and trainer.is_global_zero:
            note = requeue_slurm_job()
        # SIGTERMException declares no fields: read back by getattr in ``interrupted``.
        vars(exception).update(
            duet_signal=signum,
            duet_iteration=trainer.global_step,
            duet_note=note,
            duet_rank=trainer.global_rank,
        )

    def _restore(self) -> None:
        for signum, handler in self.previous.items():
            if handler is not None:  # None: a handler set outside Python, which cannot be put back
                signal.signal(signum, handler)
        self.previous = {}

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()


def requeue_slurm_job() -> str:
    """``scontrol requeue`` this SLURM job (an array task by its array id); what happened, as
    the end of the stop's message."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = (
        f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        if array_job
        else os.environ.get("SLURM_JOB_ID", "")
    )
    if not job:
        return "; SLURM_JOB_ID is not set, so the job was not requeued"
    try:
        result = subprocess.run(
            ["scontrol", "requeue", job], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"; requeueing SLURM job {job} failed ({error})"
    if result.returncode != 0:
        reason = " ".join(result.stderr.split()) or f"status {result.returncode}"
        return f"; requeueing SLURM job {job} failed ({reason})"
    return f"; SLURM job {job} requeued: it resumes from this state"
