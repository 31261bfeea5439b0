"""Writes last.ckpt when training ends, whatever the periodic checkpoint schedule."""

from pathlib import Path

import lightning as L


class SaveFinalCheckpoint(L.Callback):
    """When fit ends normally, saves the final state as the ModelCheckpoint's ``last.ckpt``.

    Lightning 2.6's ``ModelCheckpoint(save_last=True)`` updates last.ckpt only together with a
    periodic checkpoint, so a run whose ``max_steps`` falls between two of them (4,690 iterations
    with a checkpoint every 1,000) would leave last.ckpt at step 4,000. A failed run (an
    exception, a NaN loss) does not reach this hook, so its last good checkpoint stays.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        checkpoint = trainer.checkpoint_callback
        if checkpoint is None or not checkpoint.save_last or checkpoint.dirpath is None:
            return
        # ModelCheckpoint's own on_train_end (it runs after this callback) writes last.ckpt when
        # it has never written one; and a last save at this very step is already final.
        never_saved = not checkpoint._last_checkpoint_saved
        if never_saved or checkpoint._last_global_step_saved == trainer.global_step:
            return
        name = f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}"
        trainer.save_checkpoint(Path(checkpoint.dirpath) / name)  # every rank calls; rank 0 writes
