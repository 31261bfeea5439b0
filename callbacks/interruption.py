"""Ctrl-C and preemption stop training between two iterations, so that the state saved then
resumes exactly, and the process ends with the conventional status 128 + the signal."""

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException


class Interrupted(Exception):
    """Training stopped by ``signum`` (after iteration ``iteration``); the command line ends
    with ``exit_status`` (scripts/errors.py)."""

    def __init__(self, signum: int, iteration: int | None = None) -> None:
        self.signum, self.iteration = signum, iteration
        self.exit_status = 128 + signum
        after = "" if iteration is None else f" after iteration {iteration}"
        super().__init__(f"training stopped by {signal.Signals(signum).name}{after}")


def interrupted(stop: SIGTERMException) -> Interrupted:
    """Lightning's stop at the end of an iteration (a SystemExit with status 0) as duet's."""
    signum = getattr(stop, "duet_signal", signal.SIGTERM)
    return Interrupted(signum, getattr(stop, "duet_iteration", None))


class StopBetweenIterations(L.Callback):
    """SIGTERM already stops Lightning at the end of the running iteration, its values logged
    (its signal handler, then ``SIGTERMException``), and ``CheckpointOnException`` saves the state
    of that moment. This makes the first Ctrl-C (SIGINT) do the same, where Python would stop
    mid-iteration; a second one stops at once. It records on the exception which signal stopped
    training, and after which iteration. Under several processes Lightning's handling stays."""

    def __init__(self) -> None:
        self.received: int | None = None
        # The SIGINT handler before ours, as signal.signal returns it.
        self.previous: Callable[[int, FrameType | None], Any] | int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.received = None
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set there
        sigterm_handler = signal.getsignal(signal.SIGTERM)
        if not callable(sigterm_handler):  # Lightning registered none: its stop is not there
            return
        signal.signal(signal.SIGTERM, self._receiving(sigterm_handler))
        if trainer.world_size == 1:
            self.previous = signal.signal(signal.SIGINT, self._receive_sigint)

    def _receiving(self, handler):
        def receive(signum, frame) -> None:
            self.received = self.received or signum
            handler(signum, frame)

        return receive

    def _receive_sigint(self, signum: int, frame) -> None:
        if self.received is not None:  # the second signal: stop now
            self._restore()
            raise KeyboardInterrupt
        print("\nCtrl-C: stopping after this iteration (again to stop at once).", file=sys.stderr)
        stop = signal.getsignal(signal.SIGTERM)  # Lightning's stop, as for SIGTERM: on_train_start
        assert callable(stop)  # wrapped it (and installed this handler) only when it is callable
        stop(signal.SIGINT, frame)

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):  # it declares no fields: read by getattr
            vars(exception).update(
                duet_signal=self.received or signal.SIGTERM, duet_iteration=trainer.global_step
            )

    def _restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()
