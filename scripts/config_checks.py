"""Checks and completions of a parsed config that the duet command makes before it builds
anything (scripts/train.py): each refuses a setting that would fail or mislead later with one
line naming the option and the fix."""

import dataclasses
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.utilities.model_helpers import is_overridden

from duet.lightning_modules.checkpoints import CheckpointError, import_class, init_defaults
from duet.lightning_modules.option_groups import groups_of

# The states a run leaves to resume from: its final (or newest periodic) one, and the one saved
# when it was interrupted (CheckpointOnException), which is newer when there is one.
RESUMABLE = ("last.ckpt", "on_exception.ckpt")


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
    assert data_class is not None  # a parsed config's class_path: jsonargparse imported it
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
    if not isinstance(model, type):
        return  # not a class: nothing duet optimizes by hand
    optimization = groups_of(model).get("optimization")
    if optimization is None:
        return  # a module that Lightning optimizes itself (the classifier), or not duet's
    options = [
        f"optimization.{field.name}"
        for field in dataclasses.fields(optimization)
        if field.name.endswith("_clip_norm")
    ]
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
    loggers: list[Any] = logger if isinstance(logger, list) else [logger]  # config entries
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


def requeued_slurm_job() -> bool:
    """Whether this is a SLURM job that SLURM started again (requeued after its pre-timeout
    signal, or after a node failure): it resumes its experiment's newest state by itself, as
    Lightning's SLURM support does (``SLURM_RESTART_COUNT`` counts the restarts)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    return SLURMEnvironment.detect() and restarts.isdigit() and int(restarts) > 0


def resume_requeued_job(config) -> str | None:
    """For a requeued SLURM job run without ``--ckpt_path``: the newest state of its experiment,
    or None (a fresh start, said in one line) when it was requeued before it saved one."""
    try:
        return resolve_last_checkpoint(config)
    except CheckpointError:
        print(
            "Requeued SLURM job: no checkpoint of this experiment yet; starting afresh.",
            file=sys.stderr,
        )
        return None


def check_accelerator(trainer: Namespace) -> None:
    """``trainer.accelerator: gpu`` (or cuda) on a machine where PyTorch sees no CUDA device:
    one line with the fix, instead of Lightning's "No supported gpu backend found!"."""
    import torch

    accelerator = trainer.get("accelerator")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        fix = (
            "check the GPU and its driver (nvidia-smi)"
            if torch.version.cuda
            else "install a CUDA build of PyTorch (this one is CPU-only)"
        )
        raise ValueError(
            f"trainer.accelerator is {accelerator}, but PyTorch {torch.__version__} finds no "
            f"usable CUDA GPU here; use --trainer.accelerator cpu (or auto), or {fix}."
        )
