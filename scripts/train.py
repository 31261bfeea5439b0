"""The LightningCLI behind `duet fit|validate|test|predict --config FILE` (scripts/command.py).

A thin LightningCLI in subclass mode: any LightningModule and LightningDataModule of the project
(or of any importable package) is chosen in YAML with ``class_path``/``init_args``. Modules take
their optimizers as ``OptimizerCallable`` arguments, so ``auto_configure_optimizers`` is off.
What it adds to LightningCLI:
- a ``wandb:`` section (``--config configs/logger/wandb.yaml``) that adds a W&B logger beside
  the experiment's CSV logger, in the same run folder, with the full resolved config;
- ``progress_bar_refresh_rate: N`` redraws the progress bar every N iterations (Lightning's
  default bar redraws after each one, a few percent of a small model's iteration),
  without listing a bar in ``trainer.callbacks``, so ``--trainer.enable_progress_bar false``
  still works;
- the DataModule's ``image_shape`` is given to a model that has that option (the GAN modules
  build their networks for it);
- ``--config NAME`` reads a config shipped with duet when no file NAME exists (scripts/configs.py);
- a warning when ``trainer.max_epochs`` ends a run before its ``trainer.max_steps``;
- ``--ckpt_path last`` resumes the newest run of the experiment (and continues its W&B run);
- a checkpoint that is unreadable, damaged (its tensors no longer match the digest it was written
  with), of another module, or given other module settings stops the run before anything is
  loaded; every checkpoint is written whole or not at all (``checkpoint_files.py``).
"""

import importlib.util
import inspect
import sys
from pathlib import Path

import torch
from jsonargparse import Namespace
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.cli import ArgsType, LightningCLI
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.model_helpers import is_overridden

from duet.callbacks.interruption import StopBetweenIterations, interrupted
from duet.callbacks.step_budget import WarnUnreachableMaxSteps
from duet.lightning_modules.checkpoint_files import DigestCheckpointIO
from duet.lightning_modules.checkpoints import (
    CheckpointError,
    check_module_class,
    check_module_settings,
    import_class,
    init_defaults,
    read_checkpoint,
)
from duet.scripts.configs import with_packaged_configs
from duet.scripts.errors import run_with_clear_errors
from duet.scripts.quiet import silence_known_messages
from duet.scripts.run_loggers import SaveAndLogConfig, continue_logger_runs
from duet.scripts.wandb_logging import WandbOptions, make_wandb_logger


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

    def subcommand_config(self):
        """The parsed options of the subcommand run (fit, validate, …)."""
        return self.config[self.config.subcommand] if "subcommand" in self.config else self.config

    def parse_arguments(self, parser, args) -> None:
        if isinstance(args, dict | Namespace):
            super().parse_arguments(parser, args)
        else:  # LightningCLI's own would warn when both args and sys.argv hold arguments
            self.config = parser.parse_args(
                with_packaged_configs(sys.argv[1:] if args is None else args)
            )
        # Before LightningCLI reads the checkpoint's hyperparameters (and would silently swap
        # in the checkpoint's module class): resolve "last", then fail early and clearly.
        config = self.subcommand_config()
        check_manual_optimization_settings(config["trainer"], config["model"]["class_path"])
        check_logger_packages(config["trainer"])
        path = config.get("ckpt_path")
        if path == "last":
            path = resolve_last_checkpoint(config)
        if path and path not in ("last", "best", "hpc") and not path.startswith("registry"):
            self.resume_checkpoint = read_checkpoint(path)
            step = self.resume_checkpoint.get("global_step")
            print(f"Resuming from {path} (saved after iteration {step}).", file=sys.stderr)
            check_module_class(self.resume_checkpoint, config["model"]["class_path"], path)
            check_module_settings(self.resume_checkpoint, config["model"].as_dict(), path)
            continue_logger_runs(config["trainer"], self.resume_checkpoint)

    def before_instantiate_classes(self) -> None:
        config = self.subcommand_config()
        give_model_the_image_shape(config["model"], config["data"])

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        use_refresh_rate(trainer, config["progress_bar_refresh_rate"])
        trainer.callbacks += [WarnUnreachableMaxSteps(), StopBetweenIterations()]
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
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.finish()

    after_fit = after_validate = after_test = after_predict = _finish_wandb

    def before_validate(self) -> None:
        refuse_unless_defined(self.model, "validate", "validation_step")

    def before_test(self) -> None:
        refuse_unless_defined(self.model, "test", "test_step")

    def before_predict(self) -> None:
        refuse_unless_defined(self.model, "predict", "predict_step", "forward")


def give_model_the_image_shape(model: Namespace, data: Namespace | None) -> None:
    """A model with an ``image_shape`` option (the GAN modules) is built for the images the
    DataModule states it serves: its ``image_shape`` (channels, height, width), a class attribute
    or, read from a DataModule built from the config for this, one set in ``__init__`` or a
    property. (Not jsonargparse's link_arguments: it records the linked value among the
    hyperparameters of every model, those without the option too, whose resume then fails.)"""
    model_class = import_class(model["class_path"])
    if not isinstance(model_class, type) or data is None or "class_path" not in data:
        return
    defaults = init_defaults(model_class)
    if "image_shape" not in defaults:
        return
    data_class = import_class(data["class_path"])
    shape = getattr(data_class, "image_shape", None)
    if not isinstance(shape, tuple | list):
        init_args = data.get("init_args") or Namespace()
        shape = getattr(data_class(**init_args.as_dict()), "image_shape", None)
    if shape is None:
        return  # the model's own default, or what its config sets
    shape, given = tuple(shape), model["init_args"].get("image_shape")
    if given is not None and tuple(given) not in (shape, tuple(defaults["image_shape"])):
        raise ValueError(
            f"model.image_shape={list(given)} (from the config, or the checkpoint resumed), but "
            f"{data_class.__name__} serves images of shape {list(shape)}: the networks are built "
            "for the data; leave model.image_shape out, or resume with the data it was trained on."
        )
    model["init_args"]["image_shape"] = shape


def check_manual_optimization_settings(trainer: dict, model_class_path: str) -> None:
    """Refuse the trainer settings Lightning applies only under automatic optimization, naming
    what does the job in duet."""
    model = import_class(model_class_path)
    parameters = inspect.signature(model).parameters if isinstance(model, type) else {}
    options = [name for name in parameters if name.endswith("_clip_norm")]
    if not options:
        return  # a module that Lightning optimizes itself (the classifier), or not duet's
    clip = trainer.get("gradient_clip_val")
    if clip is not None:
        raise ValueError(
            f"trainer.gradient_clip_val={clip}: {model.__name__} steps its optimizers itself, "
            f"which Lightning does not clip; set the model's {' / '.join(options)} instead."
        )
    accumulate = trainer.get("accumulate_grad_batches", 1)
    if accumulate != 1:
        raise ValueError(
            f"trainer.accumulate_grad_batches={accumulate}: {model.__name__} updates its networks "
            "in alternation on every batch, which accumulation would change; raise "
            "data.batch_size instead (it fits: duet's networks are small)."
        )


def check_logger_packages(trainer: dict) -> None:
    """One line naming the extra to install when a logger's package is missing (Lightning's
    own error reaches the user inside jsonargparse's account of every type it tried)."""
    logger = trainer.get("logger")
    loggers = logger if isinstance(logger, list) else [logger]
    for entry in loggers:
        class_path = str(entry.get("class_path", "")) if hasattr(entry, "get") else ""
        if class_path.endswith("TensorBoardLogger") and not any(
            importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX")
        ):
            raise ModuleNotFoundError(
                f"trainer.logger {class_path} needs tensorboard, which is not installed: "
                'pip install "duet[tensorboard]" (or pip install tensorboard).'
            )


def refuse_unless_defined(module, subcommand: str, *methods: str) -> None:
    """One clear line instead of Lightning's error when the module has no step for the
    subcommand, naming the duet command that evaluates such a module."""
    if any(is_overridden(method, module) for method in methods):
        return
    instead = getattr(module, "evaluation_command", None)
    hint = f"; use `{instead}` instead" if instead else ""
    raise ValueError(f"duet {subcommand}: {type(module).__name__} has no {methods[0]}{hint}.")


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


# The states a run leaves to resume from: its final (or newest periodic) one, and the one saved
# when it was interrupted (CheckpointOnException), which is newer when there is one.
RESUMABLE = ("last.ckpt", "on_exception.ckpt")


def resolve_last_checkpoint(config) -> str:
    """``ckpt_path: last`` -> the newest state of the experiment's CSVLogger runs: the most
    recently written ``<save_dir>/<name>/version_*/checkpoints/{last,on_exception}.ckpt``. The
    resumed run logs to a new version folder: Lightning's CSV writer would delete the metrics of
    a folder it reuses."""
    logger = config["trainer"]["logger"]
    loggers = logger if isinstance(logger, list) else [logger]
    csv = next((lg for lg in loggers if "CSVLogger" in str(lg.get("class_path", ""))), None)
    if csv is None:
        return "last"  # another logger: leave "last" to Lightning's own lookup
    args = csv["init_args"]
    folder = Path(args["save_dir"]) / (args.get("name") or "lightning_logs")
    found = [path for name in RESUMABLE for path in folder.glob(f"version_*/checkpoints/{name}")]
    candidates = sorted(found, key=lambda path: path.stat().st_mtime)
    if not candidates:
        raise CheckpointError(
            f"--ckpt_path last: no checkpoint to resume in {folder}/version_*/checkpoints/ "
            f"({' or '.join(RESUMABLE)}). Start a run first, or give the path of a checkpoint."
        )
    config["ckpt_path"] = str(candidates[-1])
    return config["ckpt_path"]


def cli_main(args: ArgsType = None, run: bool = True) -> LightningCLI:
    """Build and (by default) run the CLI; ``args`` is an argument list, as on the command line."""
    silence_known_messages()
    try:
        cli = make_cli(args, run)
    except SIGTERMException as stop:  # Lightning's stop on a signal: a SystemExit with status 0
        raise interrupted(stop) from stop
    if run:  # after a run that ended without an exception: every process gets here
        end_distributed()
    return cli


def make_cli(args: ArgsType, run: bool) -> LightningCLI:
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
