"""duet's one entry point: ``python scripts/train.py {fit,validate,test,predict} --config FILE``.

A thin LightningCLI in subclass mode: any LightningModule and LightningDataModule of the project
(or of any importable package) is chosen in YAML with ``class_path``/``init_args``. Modules take
their optimizers as ``OptimizerCallable`` arguments, so ``auto_configure_optimizers`` is off.
What it adds to LightningCLI:
- a ``wandb:`` section (``--config configs/logger/wandb.yaml``) that adds a W&B logger beside
  the experiment's CSV logger, in the same run folder, with the full resolved config;
- ``progress_bar_refresh_rate: N`` redraws the progress bar every N iterations (Lightning's
  default bar redraws after each one, ~0.3 ms: a few percent of a small model's iteration),
  without listing a bar in ``trainer.callbacks``, so ``--trainer.enable_progress_bar false``
  still works;
- ``--ckpt_path last`` resumes the newest run of the experiment (and continues its W&B run);
- a checkpoint that is unreadable, of another module, or given other module settings stops the
  run before anything is loaded.
"""

import sys
from pathlib import Path

import yaml
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.cli import ArgsType, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from lightning_modules.checkpoints import (
    CheckpointError,
    check_module_class,
    check_module_settings,
    read_checkpoint,
)
from scripts.errors import run_with_clear_errors
from scripts.quiet import silence_known_messages
from scripts.wandb_logging import WandbOptions, make_wandb_logger


class SaveAndLogConfig(SaveConfigCallback):
    """Writes config.yaml into the run folder, gives W&B the full resolved config as the run's
    config, and records the W&B run id in checkpoints so a resumed fit continues that run."""

    def save_config(self, trainer, pl_module, stage) -> None:
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(config, allow_val_change=True)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                checkpoint["wandb_run_id"] = logger.version


class DuetCLI(LightningCLI):
    """LightningCLI with the ``wandb:`` section and early checkpoint checks (module docstring)."""

    resume_checkpoint: dict | None = None  # read once when parsing, released after set-up

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_class_arguments(WandbOptions, "wandb")
        parser.add_argument(
            "--progress_bar_refresh_rate",
            type=int | None,
            default=None,
            help="Redraw the progress bar every N training iterations (default: every one).",
        )

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        # Before LightningCLI reads the checkpoint's hyperparameters (and would silently swap
        # in the checkpoint's module class): resolve "last", then fail early and clearly.
        config = self.config[self.config.subcommand] if "subcommand" in self.config else self.config
        path = config.get("ckpt_path")
        if path == "last":
            path = resolve_last_checkpoint(config)
        if path and path not in ("last", "best", "hpc") and not path.startswith("registry"):
            self.resume_checkpoint = read_checkpoint(path)
            check_module_class(self.resume_checkpoint, config["model"]["class_path"], path)
            check_module_settings(self.resume_checkpoint, config["model"].as_dict(), path)

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        use_refresh_rate(trainer, config["progress_bar_refresh_rate"])
        options = config["wandb"]
        if options.enabled:
            run_id = (self.resume_checkpoint or {}).get("wandb_run_id")
            save_dir = trainer.log_dir or trainer.default_root_dir
            trainer.loggers = [*trainer.loggers, make_wandb_logger(options, save_dir, run_id)]
        self.resume_checkpoint = None  # Lightning loads the checkpoint itself for the run
        return trainer

    def _finish_wandb(self) -> None:
        # Closing the run writes it out completely now, not only when the process exits.
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.finish()

    after_fit = after_validate = after_test = after_predict = _finish_wandb


def use_refresh_rate(trainer, refresh_rate: int | None) -> None:
    """Replace the trainer's TQDM progress bar with one that redraws every ``refresh_rate``
    iterations; nothing when the bar is off or no rate is given."""
    if refresh_rate is None:
        return
    if refresh_rate < 1:
        raise ValueError(
            f"progress_bar_refresh_rate must be at least 1, got {refresh_rate}; to hide the bar, "
            "set trainer.enable_progress_bar: false."
        )
    bar = trainer.progress_bar_callback
    if isinstance(bar, TQDMProgressBar):
        trainer.callbacks[trainer.callbacks.index(bar)] = TQDMProgressBar(refresh_rate)


def resolve_last_checkpoint(config) -> str:
    """``ckpt_path: last`` -> the newest ``<save_dir>/<name>/version_*/checkpoints/last.ckpt`` of
    the experiment's CSVLogger. The resumed run logs to a new version folder: Lightning's CSV
    writer would delete the metrics of a folder it reuses."""
    logger = config["trainer"]["logger"]
    loggers = logger if isinstance(logger, list) else [logger]
    csv = next((lg for lg in loggers if "CSVLogger" in str(lg.get("class_path", ""))), None)
    if csv is None:
        return "last"  # another logger: leave "last" to Lightning's own lookup
    args = csv["init_args"]
    folder = Path(args["save_dir"]) / (args.get("name") or "lightning_logs")
    candidates = sorted(
        folder.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime
    )
    if not candidates:
        raise CheckpointError(
            f"--ckpt_path last: no {folder}/version_*/checkpoints/last.ckpt to resume. Start a run "
            "first, or give the path of a checkpoint."
        )
    config["ckpt_path"] = str(candidates[-1])
    return config["ckpt_path"]


def cli_main(args: ArgsType = None, run: bool = True) -> LightningCLI:
    """Build and (by default) run the CLI; ``args`` is an argument list, as on the command line."""
    silence_known_messages()
    return DuetCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_callback=SaveAndLogConfig,
        save_config_kwargs={"overwrite": True},
        # duet's DataModules shard (MNIST) or own (replay buffers) their data per process, and
        # resumably; Lightning's DistributedSampler would replace that.
        trainer_defaults={"use_distributed_sampler": False},
        seed_everything_default=0,
        args=args,
        run=run,
    )


def main() -> None:
    sys.exit(run_with_clear_errors(cli_main))


if __name__ == "__main__":
    main()
