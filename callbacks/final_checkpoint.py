"""Checkpoints that Lightning's schedule would not write: the final state, and the state at a
crash."""

import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from duet.datamodules.lightning_internals import step_of_last_save
from duet.datamodules.trainer_attributes import fast_dev_run
from duet.lightning_modules.checkpoints import model_checkpoint


class SaveFinalCheckpoint(L.Callback):
    """When fit ends normally, saves the final state as the ModelCheckpoint's ``last.ckpt``.

    Lightning 2.6's ``ModelCheckpoint(save_last=True)`` updates last.ckpt only together with a
    periodic checkpoint, so a run whose ``max_steps`` falls between two of them (4,690 iterations
    with a checkpoint every 1,000) would leave last.ckpt at step 4,000. A failed run (an
    exception, a NaN loss) does not reach this hook, so its last good checkpoint stays.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if fast_dev_run(trainer):  # Lightning's debugging run: no checkpoints
            return
        checkpoint = model_checkpoint(trainer)
        if checkpoint is None or not checkpoint.save_last or checkpoint.dirpath is None:
            return
        # ModelCheckpoint's own on_train_end (it runs after this callback) writes last.ckpt when
        # it has never written one; and a last save at this very step is already final.
        saved_at = step_of_last_save(checkpoint)
        if saved_at is None or saved_at == trainer.global_step:
            return
        name = f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}"
        trainer.save_checkpoint(Path(checkpoint.dirpath) / name, weights_only=False)  # every rank


class CheckpointOnException(L.Callback):
    """When training dies of an exception (Ctrl-C too), saves the state at that moment to
    ``on_exception.ckpt`` in the run's checkpoint folder (or ``dirpath``), and a line says where
    and how to resume. It is the state after the last complete iteration plus what the failing
    one had done before it failed (for the agent, possibly its environment step).

    Nothing is saved when nothing trustworthy is left or saving could hang: after a NaN or
    infinite value (FloatingPointError: its message names the newest good checkpoint), before
    this fit completed an iteration (nothing is lost, and an error of the settings, raised in
    the agent's prefill, leaves no file that looks like progress), and under several processes
    unless a signal stopped them (``StopBetweenIterations`` stops every process at the same
    iteration, so the save's collectives meet; after another exception the others may wait in a
    collective that a save would join, or be gone: their periodic checkpoints remain).

    Not Lightning's OnExceptionCheckpoint, which does the same save but also makes every later
    ``fit`` without ``ckpt_path`` resume from such a file or a last.ckpt silently (and warns
    about it on every run); duet resumes only when asked.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "on_exception") -> None:
        self.dirpath = dirpath
        self.filename = filename
        self.first_step: int | None = None  # the iteration this fit started from

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.first_step = trainer.global_step

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, FloatingPointError) or fast_dev_run(trainer):
            return
        if self.first_step is None or trainer.global_step == self.first_step:
            return
        if trainer.world_size > 1 and not isinstance(exception, SIGTERMException):
            return
        folder = self.dirpath or getattr(model_checkpoint(trainer), "dirpath", None)
        path = Path(folder or Path(trainer.default_root_dir) / "checkpoints") / (
            f"{self.filename}.ckpt"
        )
        try:
            trainer.save_checkpoint(path, weights_only=False)
        except Exception as error:  # the original exception matters more than this one
            rank_zero_warn(f"The state at the exception could not be saved: {error}")
            return
        if trainer.is_global_zero:
            print(
                f"Training stopped by {type(exception).__name__} after iteration "
                f"{trainer.global_step}; its state is saved in {path} (resume with "
                f"--ckpt_path {path}).",
                file=sys.stderr,
            )


def with_run_checkpoints(callbacks: list[L.Callback]) -> list[L.Callback]:
    """``callbacks`` with a SaveFinalCheckpoint and a CheckpointOnException where they lack one,
    placed before the first ModelCheckpoint (whose own ``on_train_end`` must run after
    SaveFinalCheckpoint's): every run the duet command starts keeps its final state and the
    state at a crash, whatever callbacks its config lists."""
    missing = [
        kind()
        for kind in (SaveFinalCheckpoint, CheckpointOnException)
        if not any(isinstance(callback, kind) for callback in callbacks)
    ]
    first = next(
        (i for i, c in enumerate(callbacks) if isinstance(c, ModelCheckpoint)), len(callbacks)
    )
    return [*callbacks[:first], *missing, *callbacks[first:]]
