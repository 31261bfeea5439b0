"""The LightningCLI behind `duet fit|validate|test|predict --config FILE` (scripts/command.py).

A thin LightningCLI in subclass mode: any LightningModule and LightningDataModule of the project
(or of any importable package) is chosen in YAML with ``class_path``/``init_args``. Modules take
their optimizers as ``OptimizerCallable`` arguments, so ``auto_configure_optimizers`` is off.
What it adds to LightningCLI:
- a ``wandb:`` section (``--config configs/logger/wandb.yaml``) that adds a W&B logger beside
  the experiment's CSV logger, in the same run folder, with the full resolved config;
- a ``collector:`` section, the agent's GymCollector reached by name (``--collector.env_id
  Acrobot-v1``), absent from configs without one (scripts/collector_section.py);
- ``progress_bar_refresh_rate: N`` redraws the progress bar every N iterations (Lightning's
  default bar redraws after each one, a few percent of a small model's iteration),
  without listing a bar in ``trainer.callbacks``, so ``--trainer.enable_progress_bar false``
  still works;
- the DataModule's ``image_shape`` is given to a model that has that option (the GAN modules
  build their networks for it);
- ``--config NAME`` reads a config shipped with duet when no file NAME exists (scripts/configs.py);
  options on the command line override every ``--config``, wherever they stand; a parse error is
  one line naming the key, where it was given and the closest option (scripts/parse_errors.py);
- every run reads ``configs/base.yaml`` first (the trainer, checkpoints and CSV logger that the
  experiments share; jsonargparse's default config file), so a config states only what differs;
- every run keeps its final state and the state at a crash: SaveFinalCheckpoint and
  CheckpointOnException join any callback list that lacks them;
- a warning when ``trainer.max_epochs`` ends a run before its ``trainer.max_steps``;
- ``--ckpt_path last`` resumes the newest run of the experiment (and continues its W&B run), as
  does a requeued SLURM job given no ``--ckpt_path``;
- signals stop every process after the same iteration (callbacks/interruption.py), and a lost
  DDP process is one line naming it and the checkpoint to resume (callbacks/lost_process.py);
- a checkpoint that is unreadable, damaged (its tensors no longer match the digest it was written
  with), of another module, or given other module settings stops the run before anything is
  loaded; every checkpoint is written whole or not at all (``checkpoint_files.py``).
"""

import sys

import torch
from jsonargparse import Namespace
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.cli import ArgsType, LightningCLI
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from duet.callbacks.final_checkpoint import with_run_checkpoints
from duet.callbacks.interruption import StopBetweenIterations, interrupted
from duet.callbacks.lost_process import NameLostProcess, ProcessLost
from duet.callbacks.step_budget import WarnUnreachableMaxSteps
from duet.lightning_modules.checkpoint_files import DigestCheckpointIO
from duet.lightning_modules.checkpoints import (
    check_module_class,
    check_module_settings,
    import_class,
    read_checkpoint,
    upgraded_options,
)
from duet.scripts.collector_section import (
    add_collector_section,
    check_one_collector,
    drop_absent_collector,
)
from duet.scripts.config_checks import (
    check_accelerator,
    check_logger_packages,
    check_manual_optimization_settings,
    give_model_the_image_shape,
    refuse_unless_defined,
    requeued_slurm_job,
    resolve_last_checkpoint,
    resume_requeued_job,
)
from duet.scripts.configs import base_config, configs_first, with_packaged_configs
from duet.scripts.errors import run_with_clear_errors
from duet.scripts.null_options import with_null_fields_as_mappings
from duet.scripts.parse_errors import DuetArgumentParser, remember_command_line
from duet.scripts.quiet import silence_known_messages
from duet.scripts.run_loggers import SaveAndLogConfig, continue_logger_runs
from duet.scripts.wandb_logging import WandbOptions, make_wandb_logger


class DuetCLI(LightningCLI):
    """LightningCLI with the ``wandb:`` section and early checkpoint checks (module docstring)."""

    resume_checkpoint: dict | None = None  # read once when parsing, released after set-up

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_class_arguments(WandbOptions, "wandb")
        add_collector_section(parser)
        parser.add_argument(
            "--progress_bar_refresh_rate",
            type=int | None,
            default=None,
            help="Redraw the progress bar every N training iterations (default: every one).",
        )

    def subcommand_config(self):
        """The parsed options of the subcommand run (fit, validate, …)."""
        return self.config[self.config.subcommand] if "subcommand" in self.config else self.config

    def parse_arguments(self, parser, args) -> None:
        if isinstance(args, dict | Namespace):
            super().parse_arguments(parser, args)
        else:  # LightningCLI's own would warn when both args and sys.argv hold arguments
            given = configs_first(with_packaged_configs(sys.argv[1:] if args is None else args))
            remember_command_line(given)
            self.config = parser.parse_args(with_null_fields_as_mappings(given))
        # Before LightningCLI reads the checkpoint's hyperparameters (and would silently swap
        # in the checkpoint's module class): resolve "last", then fail early and clearly.
        config = self.subcommand_config()
        check_manual_optimization_settings(config["trainer"], config["model"]["class_path"])
        check_logger_packages(config["trainer"])
        check_accelerator(config["trainer"])
        path = config.get("ckpt_path")
        if path == "last":
            path = resolve_last_checkpoint(config)
        elif path is None and requeued_slurm_job():
            path = config["ckpt_path"] = resume_requeued_job(config)
        if path and path not in ("last", "best", "hpc") and not path.startswith("registry"):
            self.resume_checkpoint = read_checkpoint(path)
            step = self.resume_checkpoint.get("global_step")
            print(f"Resuming from {path} (saved after iteration {step}).", file=sys.stderr)
            check_module_class(self.resume_checkpoint, config["model"]["class_path"], path)
            check_module_settings(self.resume_checkpoint, config["model"].as_dict(), path)
            continue_logger_runs(config["trainer"], self.resume_checkpoint)

    def _parse_ckpt_path(self) -> None:
        # Overrides LightningCLI's (lightning_internals.py lists it): that one reads the
        # checkpoint a second time and parses its hyperparameters as saved, which fails on
        # options that a later release moved (duet 0.2's ``ema_decay``). The same merge, into
        # the config, of the checkpoint read when parsing, its options upgraded.
        if not self.config.get("subcommand") or self.resume_checkpoint is None:
            return
        model_class = import_class(self.subcommand_config()["model"]["class_path"])
        saved = self.resume_checkpoint.get("hyper_parameters") or {}
        hparams = upgraded_options(model_class, saved)
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        self.config = self.parser.parse_object(
            {self.config.subcommand: {"model": hparams}}, self.config
        )

    def before_instantiate_classes(self) -> None:
        config = self.subcommand_config()
        give_model_the_image_shape(config["model"], config["data"])

    def instantiate_trainer(self, **kwargs):
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        check_one_collector(config)
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (TypeError, ValueError) as error:  # Lightning's check of a trainer option
            raise ValueError(f"trainer settings refused by Lightning: {error}") from error
        drop_absent_collector(trainer)
        use_refresh_rate(trainer, config["progress_bar_refresh_rate"])
        trainer.callbacks = with_run_checkpoints(trainer.callbacks)
        # The config's StopBetweenIterations (its pace) or a default one, last: it requeues a
        # SLURM job only after CheckpointOnException has saved the state.
        stops = [c for c in trainer.callbacks if isinstance(c, StopBetweenIterations)]
        others = [c for c in trainer.callbacks if not isinstance(c, StopBetweenIterations)]
        stop = stops[-1] if stops else StopBetweenIterations()
        trainer.callbacks = [*others, WarnUnreachableMaxSteps(), NameLostProcess(), stop]
        if trainer.fast_dev_run:
            # Lightning 2.6's ModelCheckpoint(save_last=True) writes last.ckpt at the end of a
            # fast_dev_run too (its on_train_end skips the check its other saves make), into
            # ./checkpoints/: a debugging run writes no checkpoints.
            keep = [c for c in trainer.callbacks if not isinstance(c, ModelCheckpoint)]
            trainer.callbacks = keep
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not a user's own writer
            trainer.strategy.checkpoint_io = DigestCheckpointIO()
        options = config["wandb"]
        if options.enabled:
            run_id = (self.resume_checkpoint or {}).get("wandb_run_id")
            save_dir = trainer.log_dir or trainer.default_root_dir
            trainer.loggers = [*trainer.loggers, make_wandb_logger(options, save_dir, run_id)]
        self.resume_checkpoint = None  # Lightning loads the checkpoint itself for the run
        return trainer

    def _finish_wandb(self) -> None:
        # Closing the run writes it out completely now, not only when the process exits.
        import wandb  # a W&B logger has imported it already

        if wandb.run is not None and any(isinstance(x, WandbLogger) for x in self.trainer.loggers):
            wandb.run.finish()

    after_fit = after_validate = after_test = after_predict = _finish_wandb

    def before_validate(self) -> None:
        refuse_unless_defined(self.model, "validate", "validation_step")

    def before_test(self) -> None:
        refuse_unless_defined(self.model, "test", "test_step")

    def before_predict(self) -> None:
        refuse_unless_defined(self.model, "predict", "predict_step", "forward")


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


def cli_main(args: ArgsType = None, run: bool = True) -> LightningCLI:
    """Build and (by default) run the CLI; ``args`` is an argument list, as on the command line."""
    silence_known_messages()
    try:
        cli = make_cli(args, run)
    except SIGTERMException as stop:  # Lightning's stop on a signal: a SystemExit with status 0
        raise interrupted(stop) from stop
    except Exception as error:
        lost = getattr(error, "duet_lost_process", None)  # NameLostProcess
        if lost is None:
            raise
        raise ProcessLost(lost) from error
    if run:  # after a run that ended without an exception: every process gets here
        end_distributed()
    return cli


def make_cli(args: ArgsType, run: bool) -> LightningCLI:
    return DuetCLI(
        parser_class=DuetArgumentParser,
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_callback=SaveAndLogConfig,
        save_config_kwargs={"overwrite": True},
        # duet's DataModules shard (MNIST) or own (replay buffers) their data per process, and
        # resumably; Lightning's DistributedSampler would replace that.
        trainer_defaults={"use_distributed_sampler": False},
        seed_everything_default=0,
        parser_kwargs=base_config_first(run),
        args=args,
        run=run,
    )


def base_config_first(run: bool) -> dict:
    """Parser options that read ``configs/base.yaml`` before any ``--config``: jsonargparse
    applies default config files over the code's defaults and under everything given (with
    subcommands, each subcommand's parser reads it)."""
    base = {"default_config_files": [str(base_config())]}
    return {name: base for name in LightningCLI.subcommands()} if run else base


def end_distributed() -> None:
    """Destroy the process group a DDP run made. A process that exits with it alive can abort
    in gloo's threads during interpreter shutdown ("terminate called without an active
    exception") after training finished; Lightning leaves it to the program."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def main() -> None:
    sys.exit(run_with_clear_errors(cli_main))


if __name__ == "__main__":
    main()
