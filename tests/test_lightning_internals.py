"""Each private name of datamodules/lightning_internals.py, exercised against the real Lightning
and PyTorch classes (no fakes): an upgrade that renames or reshapes one fails here by name."""

import inspect
import signal
import subprocess

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from duet.datamodules import lightning_internals as internals


class TwoOptimizers(L.LightningModule):
    """Steps two optimizers per batch under manual optimization, the second uncounted (or, with
    ``compiled``, neither stepped but one counted), and records ``logging_due`` per batch."""

    def __init__(self, compiled: bool = False) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.first, self.second = nn.Linear(1, 1), nn.Linear(1, 1)
        self.compiled = compiled
        self.logging_due: list[bool] = []

    def configure_optimizers(self):
        return (
            torch.optim.SGD(self.first.parameters(), lr=0.1),
            torch.optim.SGD(self.second.parameters(), lr=0.1),
        )

    def training_step(self, batch, batch_idx):
        first, second = self.optimizers()
        (x,) = batch
        loss = self.first(x).sum() + self.second(x).sum()
        self.manual_backward(loss)
        if self.compiled:
            internals.count_step(first)
        else:
            first.step()
            internals.step_uncounted(second)
        self.logging_due.append(internals.logging_due(self.trainer))


def fit(module: L.LightningModule, tmp_path, **trainer_options) -> L.Trainer:
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **{"max_steps": 6, "enable_checkpointing": False, **trainer_options},
    )
    data = DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=1)
    trainer.fit(module, data)
    return trainer


def test_an_uncounted_step_updates_weights_but_not_global_step(tmp_path):
    module = TwoOptimizers()
    before = module.second.weight.detach().clone()
    trainer = fit(module, tmp_path)
    assert trainer.global_step == 6  # one counted step per batch, not two
    assert not torch.equal(module.second.weight, before)  # the uncounted one did step


def test_count_step_counts_without_stepping(tmp_path):
    module = TwoOptimizers(compiled=True)
    before = module.first.weight.detach().clone()
    trainer = fit(module, tmp_path)
    assert trainer.global_step == 6
    assert torch.equal(module.first.weight, before)


def test_logging_due_follows_log_every_n_steps(tmp_path):
    module = TwoOptimizers()
    fit(module, tmp_path, log_every_n_steps=3)
    assert module.logging_due == [False, False, True, False, False, True]


def test_lightning_shards_batches_reads_the_trainers_option():
    assert internals.lightning_shards_batches(L.Trainer(accelerator="cpu", logger=False))
    unsharded = L.Trainer(accelerator="cpu", logger=False, use_distributed_sampler=False)
    assert not internals.lightning_shards_batches(unsharded)


def test_step_of_last_save_is_none_until_a_checkpoint_is_written(tmp_path):
    checkpoint = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=4, save_last=True)
    assert internals.step_of_last_save(checkpoint) is None
    fit(TwoOptimizers(), tmp_path, enable_checkpointing=True, callbacks=[checkpoint], max_steps=5)
    assert internals.step_of_last_save(checkpoint) == 4


def test_nvml_probe_answers_a_boolean():
    assert isinstance(internals.nvml_unavailable(), bool)
    if torch.version.cuda is not None:  # the private probe exists in CUDA builds
        assert isinstance(torch.cuda._device_count_nvml(), int)  # noqa: SLF001


def test_lightning_cli_still_merges_checkpoint_hyperparameters_through_the_overridden_method():
    from lightning.pytorch.cli import LightningCLI

    from duet.scripts.train import DuetCLI

    assert "_parse_ckpt_path" in vars(LightningCLI)
    assert "self._parse_ckpt_path()" in inspect.getsource(LightningCLI.__init__)
    assert "_parse_ckpt_path" in vars(DuetCLI)


class StopAfter(L.Callback):
    """Asks for the stop at the end of iteration ``iteration`` and records the exception."""

    def __init__(self, iteration: int) -> None:
        self.iteration, self.exception = iteration, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.iteration:
            internals.stop_after_this_iteration(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.exception = exception
        self.completed = trainer.fit_loop.epoch_loop.batch_progress.current.completed


def test_stop_after_this_iteration_ends_the_fit_with_that_iteration_counted_complete(tmp_path):
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    stop = StopAfter(3)
    with pytest.raises(SIGTERMException):
        fit(TwoOptimizers(), tmp_path, callbacks=[stop])
    assert isinstance(stop.exception, SIGTERMException)
    assert stop.completed == 3  # the third batch is done, the fourth not fetched into training


def test_cluster_environment_is_the_detected_one(monkeypatch):
    from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment

    trainer = L.Trainer(accelerator="cpu", logger=False)
    assert isinstance(internals.cluster_environment(trainer), LightningEnvironment)
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "duet")
    on_slurm = internals.cluster_environment(L.Trainer(accelerator="cpu", logger=False))
    assert isinstance(on_slurm, SLURMEnvironment) and on_slurm.auto_requeue


def watched(main: subprocess.Popen):
    """Lightning's watch over one child that has failed (exit 3), guarding ``main``."""
    from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver

    child = subprocess.Popen(["sh", "-c", "exit 3"])
    child.wait()
    return _ChildProcessObserver(main_pid=main.pid, child_processes=[child], sleep_period=0.2)


def test_the_watch_over_child_processes_kills_the_main_one_unless_stopped():
    mains = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    try:
        unstopped, stopped = watched(mains[0]), watched(mains[1])
        stopped.start()
        internals.stop_watching_child_processes()  # before its first look
        unstopped.start()
        unstopped.join(5), stopped.join(5)
        assert mains[0].wait(5) == -signal.SIGKILL  # what the watch does to a main process
        assert not stopped.is_alive() and mains[1].poll() is None  # left alone
    finally:
        for main in mains:
            main.kill()
            main.wait()
