"""The one folder of a run, whatever its logger: config, checkpoints, samples and plots."""

import os

import lightning as L
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger


def run_folder(trainer: L.Trainer) -> str:
    """The folder of this run. For CSV and TensorBoard loggers, the first logger's ``log_dir``;
    for any other (a plain WandbLogger) the folder Lightning's ModelCheckpoint puts the run's
    checkpoints into, ``<save_dir>/<name>/<version>``, where Lightning's own ``trainer.log_dir``
    would give the bare ``save_dir`` that every run shares; without a logger the trainer's
    ``default_root_dir``. A collective under DDP: call it on every process."""
    if not trainer.loggers or isinstance(trainer.loggers[0], CSVLogger | TensorBoardLogger):
        return trainer.log_dir or trainer.default_root_dir
    logger = trainer.loggers[0]
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    folder = os.path.join(logger.save_dir or trainer.default_root_dir, str(logger.name), version)
    return trainer.strategy.broadcast(folder)
