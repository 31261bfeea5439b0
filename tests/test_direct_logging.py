"""Callbacks that write to the loggers themselves line up with Lightning's own rows."""

import csv

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from duet.callbacks.direct_logging import log_to_loggers
from duet.lightning_modules import GAN
from tests.conftest import tiny_mnist, tiny_trainer


class LogsIterationsDone(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        log_to_loggers(trainer, {"probe/iterations_done": trainer.global_step}, trainer.global_step)


def test_directly_logged_values_share_the_step_of_their_iterations_losses(mnist_dir, tmp_path):
    trainer = tiny_trainer(
        tmp_path,
        max_steps=4,
        logger=CSVLogger(tmp_path, name="run"),
        log_every_n_steps=1,
        callbacks=[LogsIterationsDone()],
    )
    trainer.fit(GAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    with open(tmp_path / "run" / "version_0" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    loss_steps = [int(row["step"]) for row in rows if row["train/d_loss"]]
    probes = {
        int(row["step"]): row["probe/iterations_done"]
        for row in rows
        if row["probe/iterations_done"]
    }
    assert loss_steps == [0, 1, 2, 3]  # Lightning: iteration k at step k − 1
    assert probes == {step: str(step + 1) for step in loss_steps}
