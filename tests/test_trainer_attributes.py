"""datamodules/trainer_attributes.py read from a real Trainer: an upgrade that renames or stops
setting one of these attributes fails here by name."""

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from duet.datamodules.trainer_attributes import (
    attached_datamodule,
    fast_dev_run,
    trainer_callbacks,
)


class OneBatchData(L.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=2)


class Regression(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def trainer(tmp_path, **options) -> L.Trainer:
    return L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        **options,
    )


def test_fast_dev_run_reads_the_trainer_option(tmp_path):
    assert fast_dev_run(trainer(tmp_path, fast_dev_run=True)) is True
    assert fast_dev_run(trainer(tmp_path, fast_dev_run=3)) == 3
    assert not fast_dev_run(trainer(tmp_path))


def test_attached_datamodule_is_the_one_given_to_fit(tmp_path):
    fitting = trainer(tmp_path, max_steps=1)
    assert attached_datamodule(fitting) is None
    data = OneBatchData()
    fitting.fit(Regression(), datamodule=data)
    assert attached_datamodule(fitting) is data


def test_trainer_callbacks_are_the_list_the_trainer_runs(tmp_path):
    given = L.Callback()
    fitting = L.Trainer(
        default_root_dir=tmp_path, accelerator="cpu", logger=False, callbacks=[given]
    )
    callbacks = trainer_callbacks(fitting)
    checkpoint = fitting.checkpoint_callback
    assert callbacks[0] is given and checkpoint in callbacks  # with those Lightning adds
    callbacks.remove(checkpoint)  # the Trainer's own list: the change reaches the Trainer
    assert fitting.checkpoint_callback is None
