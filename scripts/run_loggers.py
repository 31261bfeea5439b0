"""Any logger a config names (``trainer.logger``) or the ``wandb:`` section adds gets the same
care: the full resolved config, and on resume the same run.

- W&B: the config becomes the run's config; the run id is saved in each checkpoint, and a fit
  resumed from it continues that run (a WandbLogger in ``trainer.logger`` without its own
  ``id``/``version`` is given the saved id before it is built).
- TensorBoard: the config is written as the run's ``config`` text; the log version is saved, and
  a resumed fit writes into the same version folder (TensorBoard adds an events file there).
"""

import os

import yaml
from jsonargparse import Namespace
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from duet.callbacks.run_folder import run_folder
from duet.lightning_modules.checkpoints import import_class

# checkpoint key -> (logger class, the init argument that picks the run)
RUN_KEYS = {
    "wandb_run_id": (WandbLogger, "id"),
    "tensorboard_version": (TensorBoardLogger, "version"),
}


class SaveAndLogConfig(SaveConfigCallback):
    """Writes config.yaml into the run folder, gives the loggers the full resolved config, and
    records in checkpoints which logger runs a resumed fit continues.

    The run folder is duet's (``callbacks/run_folder.py``): with a plain WandbLogger, Lightning's
    own choice, ``trainer.log_dir``, is the save_dir that every run shares."""

    def setup(self, trainer, pl_module, stage) -> None:
        self.folder = run_folder(trainer)  # a collective: on every process
        self.save_to_log_dir = False  # written by save_config, into self.folder
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer, pl_module, stage) -> None:
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, self.config_filename)
        options = dict(skip_none=False, overwrite=self.overwrite, multifile=self.multifile)
        self.parser.save(self.config, path, **options)
        text = self.parser.dump(self.config, skip_none=False)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(yaml.safe_load(text), allow_val_change=True)
            elif isinstance(logger, TensorBoardLogger):
                code = "".join(f"    {line}\n" for line in text.splitlines())  # markdown code
                logger.experiment.add_text("config", code, global_step=trainer.global_step)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        for key, (logger_class, _) in RUN_KEYS.items():
            for logger in trainer.loggers:
                if isinstance(logger, logger_class):
                    checkpoint[key] = logger.version


def continue_logger_runs(trainer_config: Namespace, checkpoint: dict) -> None:
    """Point the W&B and TensorBoard loggers of ``trainer.logger`` at the runs the checkpoint
    was logged to, unless the config already names a run for them."""
    loggers = trainer_config.get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        if not isinstance(logger, Namespace) or "class_path" not in logger:
            continue
        logger_class = import_class(logger.class_path)
        for key, (run_class, argument) in RUN_KEYS.items():
            chosen = logger.init_args.get(argument)
            if (
                checkpoint.get(key) is not None
                and isinstance(logger_class, type)
                and issubclass(logger_class, run_class)
                and chosen is None
                and logger.init_args.get("version") is None
            ):
                logger.init_args[argument] = checkpoint[key]
