"""Every private attribute of Lightning and PyTorch that duet touches, and why.

Each function below reads or sets one private name for which neither library offers a public
way, and states the version it was written against (Lightning 2.6, PyTorch 2.14) and the
upstream behaviour it works around. tests/test_lightning_internals.py exercises each against
the real classes, so an upgrade that renames or reshapes one fails there, by name, rather than
somewhere in a training run. ruff's private-member rule (SLF001) is on for every other file.

One private method is overridden rather than called: ``DuetCLI._parse_ckpt_path``
(scripts/train.py) replaces LightningCLI's merge of a checkpoint's hyperparameters into the
config, to upgrade options that a release moved and to use the checkpoint already read; its test
pins that LightningCLI still calls that method while it builds.

It lives in the lowest layer (datamodules <- lightning_modules <- callbacks <- scripts) so that
every layer may import it.
"""

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.core.optimizer import LightningOptimizer


def _do_nothing() -> None:
    pass


def step_uncounted(optimizer: LightningOptimizer) -> None:
    """``optimizer.step()`` without advancing ``trainer.global_step``.

    Lightning counts every optimizer step of manual optimization in ``global_step`` (Lightning
    issue 17958, open in 2.6), so two optimizers would count two steps per batch. Each duet module
    lets exactly one step per batch count, so ``max_steps``, ``every_n_train_steps`` and the
    logger's x-axis all count training iterations. The counting sits in the two hooks that
    Lightning's manual loop installs on each ``LightningOptimizer``; they are muted for this step.
    """
    before, after = optimizer._on_before_step, optimizer._on_after_step
    optimizer._on_before_step = optimizer._on_after_step = _do_nothing
    try:
        optimizer.step()
    finally:
        optimizer._on_before_step, optimizer._on_after_step = before, after


def count_step(optimizer: LightningOptimizer) -> None:
    """Count one step of ``optimizer`` in ``trainer.global_step`` without stepping it, for an
    update computed elsewhere (the agent's compiled iteration), as ``step()`` would count it."""
    optimizer._on_before_step()
    optimizer._on_after_step()


def logging_due(trainer: L.Trainer) -> bool:
    """Whether the loggers write the metrics logged in this training iteration: Lightning's own
    rule (``log_every_n_steps``, the last batch, a stop), which it keeps on a private connector.

    On other iterations Lightning drops step metrics, but each ``self.log`` call still costs its
    bookkeeping, a visible share of a small model's iteration (BENCHMARKS.md)."""
    return trainer._logger_connector.should_update_logs


def lightning_shards_batches(trainer: L.Trainer) -> bool:
    """Whether the trainer was created with ``use_distributed_sampler=True`` (the default), so
    that Lightning would put a DistributedSampler into the training loader. The Trainer keeps
    the flag only on its accelerator connector; the in-memory DataModules shard batches
    themselves and refuse it."""
    return trainer._accelerator_connector.use_distributed_sampler


def step_of_last_save(callback: ModelCheckpoint) -> int | None:
    """The iteration of the newest checkpoint ``callback`` wrote in this fit; None when it has
    written none (Lightning keeps both privately; ``last_model_path`` is set only by a save of
    last.ckpt)."""
    if not callback._last_checkpoint_saved:
        return None
    return callback._last_global_step_saved


def nvml_unavailable() -> bool:
    """Whether PyTorch fails to load NVML on this machine (every CPU-only one). PyTorch has only
    the private probe; ``torch.cuda.device_count()`` falls back silently."""
    return torch.version.cuda is not None and torch.cuda._device_count_nvml() < 0
