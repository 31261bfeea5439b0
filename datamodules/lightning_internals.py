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

import threading

import lightning as L
import torch
from lightning.fabric.plugins.environments import ClusterEnvironment
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


def stop_after_this_iteration(trainer: L.Trainer) -> None:
    """Make Lightning end training once the running iteration is complete, as its own SIGTERM
    handler does: it raises ``SIGTERMException`` at the end of the iteration, after counting it
    done and before the next one fetches a batch, so the state saved then resumes exactly.

    The public ``trainer.should_stop`` ends the epoch instead, counting it complete (a resume
    would skip the rest of its batches), and is ignored until ``min_steps``. Lightning keeps the
    flag, read-only, behind ``trainer.received_sigterm``.
    """
    trainer._signal_connector.received_sigterm = True


def cluster_environment(trainer: L.Trainer) -> ClusterEnvironment | None:
    """The cluster environment the trainer detected or was given (SLURM's says whether it
    requeues a job and with which signal). Only parallel strategies expose it publicly; a
    single-device run under SLURM keeps it on the accelerator connector alone."""
    return trainer._accelerator_connector.cluster_environment


def stop_watching_child_processes() -> None:
    """End the watch Lightning's ``ddp`` launcher keeps over the processes it started, before
    its next look, so that it leaves this process alone from now on.

    The watch (a thread, every 5 s) SIGKILLs the main process as soon as a child has exited with
    a non-zero status. A child that stopped on a signal exits with 143 or 130, and a child that
    was lost is what the main process is about to report; either way the main process is
    already ending, and the watch would cut short its checkpoint, its one-line message and its
    exit status. The thread's loop calls its ``_run`` after each sleep; this one reports "done".
    """
    from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver

    for thread in threading.enumerate():
        if isinstance(thread, _ChildProcessObserver):
            thread._run = _watch_done  # type: ignore[method-assign]


def _watch_done() -> bool:
    return True
