"""Public Trainer attributes that Lightning documents but assigns at run time, outside the class
body (2.6: ``fast_dev_run`` in ``trainer/setup.py``, ``datamodule`` in the data connector,
``callbacks`` in the callback connector), so type checkers cannot see them. Each is read here
once, typed as Lightning documents it; tests/test_trainer_attributes.py reads them from a real
Trainer.

It lives in the lowest layer (datamodules <- lightning_modules <- callbacks <- scripts) so that
every layer may import it.
"""

import lightning as L
from lightning.pytorch.callbacks import Callback


def fast_dev_run(trainer: L.Trainer) -> int | bool:
    """``Trainer(fast_dev_run=...)``: Lightning's debugging run (True, or a number of batches)
    when truthy."""
    return trainer.fast_dev_run  # type: ignore[attr-defined]  # set in trainer/setup.py


def attached_datamodule(trainer: L.Trainer) -> L.LightningDataModule | None:
    """The DataModule given to ``fit``/``validate``/``test``; None when loaders were given."""
    return trainer.datamodule  # type: ignore[attr-defined]  # set by the data connector


def trainer_callbacks(trainer: L.Trainer) -> list[Callback]:
    """The callbacks the Trainer runs: those given as ``Trainer(callbacks=...)`` and those it adds
    (checkpointing, progress bar, model summary), in their running order. The list itself, so that
    changes to it reach the Trainer."""
    return trainer.callbacks  # type: ignore[attr-defined]  # set by the callback connector
