"""W&B offline logging, resuming with --ckpt_path last, bad checkpoints, resumes that change
settings, crashes and SIGKILL."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from duet.callbacks import CheckpointOnException, SampleGrid, SaveFinalCheckpoint
from duet.callbacks.final_checkpoint import with_run_checkpoints
from duet.lightning_modules.checkpoints import CheckpointError
from duet.scripts import wandb_logging
from duet.scripts.train import cli_main
from tests.wandb_records import run_contents

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["duet"])
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")


def gan_args(mnist_dir, *extra):
    return [
        "fit",
        "--config",
        str(REPO / "configs" / "gan.yaml"),
        f"--data.data_dir={mnist_dir}",
        "--data.batch_size=16",
        "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
        *extra,
    ]


def wandb_run_files(run_folder: Path) -> list[Path]:
    return sorted(run_folder.glob("wandb/offline-run-*/run-*.wandb"))


def test_offline_wandb_run_holds_the_config_scalars_and_sample_images(mnist_dir, tmp_path):
    wandb_config = str(REPO / "configs" / "logger" / "wandb.yaml")
    cli_main(gan_args(mnist_dir, "--config", wandb_config, "--trainer.max_steps=4"))
    run = tmp_path / "runs" / "gan" / "version_0"
    (run_file,) = wandb_run_files(run)
    config, history = run_contents(run_file)
    # The full resolved LightningCLI config, not only the module's hyperparameters.
    assert config["model"]["class_path"] == "duet.lightning_modules.GAN"
    assert config["data"]["init_args"]["batch_size"] == 16
    assert config["trainer"]["max_steps"] == 4
    steps = [row["trainer/global_step"] for row in history if "train/d_loss" in row]
    assert steps == [0, 1, 2, 3]  # every iteration, on the iteration axis
    (image_row,) = [row for row in history if row.get("samples/_type") == "images/separated"]
    assert image_row["trainer/global_step"] == 3  # drawn after iteration 4, on its losses' step
    (filename,) = image_row["samples/filenames"]
    assert (run_file.parent / "files" / filename).read_bytes()[:4] == b"\x89PNG"


def test_resume_last_continues_the_newest_run_and_its_wandb_run(mnist_dir, tmp_path):
    wandb_config = str(REPO / "configs" / "logger" / "wandb.yaml")
    experiment = tmp_path / "runs" / "gan"
    cli_main(gan_args(mnist_dir, "--config", wandb_config, "--trainer.max_steps=3"))
    cli = cli_main(
        gan_args(mnist_dir, "--config", wandb_config, "--trainer.max_steps=5", "--ckpt_path=last")
    )
    assert cli.trainer.global_step == 5
    (first,) = wandb_run_files(experiment / "version_0")
    (second,) = wandb_run_files(experiment / "version_1")
    assert first.stem == second.stem  # run-<id>.wandb: the same W&B run id, resumed
    resumed_rows = (experiment / "version_1" / "metrics.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in resumed_rows] == ["3", "4"]  # iterations 4 and 5
    # A second resume picks the newest run, the one just resumed.
    cli = cli_main(gan_args(mnist_dir, "--trainer.max_steps=6", "--ckpt_path=last"))
    assert cli.trainer.global_step == 6


def test_resume_last_without_a_previous_run_says_so(mnist_dir):
    with pytest.raises(
        CheckpointError, match=r"no checkpoint to resume in .*\(last\.ckpt or on_exception\.ckpt\)"
    ):
        cli_main(gan_args(mnist_dir, "--ckpt_path=last", "--trainer.max_steps=1"))


def test_mode_is_online_only_with_credentials(monkeypatch, tmp_path):
    options = wandb_logging.WandbOptions(enabled=True)
    assert wandb_logging.choose_mode(options) == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_logging.choose_mode(options) == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    (tmp_path / "netrc").write_text("machine api.wandb.ai login user password secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_logging.choose_mode(options) == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_logging.choose_mode(options) == "offline"
    assert wandb_logging.choose_mode(wandb_logging.WandbOptions(mode="disabled")) == "disabled"


def test_log_model_is_dropped_with_a_warning_offline(monkeypatch, tmp_path):
    given: dict = {}
    monkeypatch.setattr(
        wandb_logging, "ResilientWandbLogger", lambda **kwargs: given.update(kwargs)
    )
    options = wandb_logging.WandbOptions(enabled=True, mode="offline", log_model=True)
    with pytest.warns(UserWarning, match="log_model=True needs online mode"):
        wandb_logging.make_wandb_logger(options, str(tmp_path), run_id=None)
    assert given["log_model"] is False and given["mode"] == "offline"


def test_an_unreachable_server_falls_back_to_offline(monkeypatch, tmp_path):
    import wandb

    real_init, modes = wandb.init, []

    def init(**kwargs):
        modes.append(kwargs.get("mode"))
        if kwargs.get("mode") == "online":
            raise wandb.errors.CommError("no route to api.wandb.ai")
        return real_init(**kwargs)

    monkeypatch.setattr(wandb, "init", init)
    options = wandb_logging.WandbOptions(enabled=True, mode="online")
    logger = wandb_logging.make_wandb_logger(options, str(tmp_path), run_id=None)
    with pytest.warns(UserWarning, match="logging offline instead"):
        experiment = logger.experiment
    assert modes == ["online", "offline"] and experiment.offline
    experiment.finish()


@pytest.fixture
def gan_checkpoint(mnist_dir, tmp_path):
    cli_main(gan_args(mnist_dir, "--trainer.max_steps=2"))
    return tmp_path / "runs" / "gan" / "version_0" / "checkpoints" / "last.ckpt"


def test_truncated_checkpoint_is_named(gan_checkpoint, mnist_dir, tmp_path):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(gan_checkpoint.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"broken\.ckpt cannot be read; it is truncated"):
        cli_main(gan_args(mnist_dir, f"--ckpt_path={broken}", "--trainer.max_steps=3"))


def test_checkpoint_of_another_module_is_refused(gan_checkpoint, mnist_dir):
    args = gan_args(mnist_dir, f"--ckpt_path={gan_checkpoint}", "--trainer.max_steps=3")
    args[2] = str(REPO / "configs" / "lsgan.yaml")
    with pytest.raises(
        CheckpointError, match=r"saved by duet\.lightning_modules\.gan\.GAN, but the model is"
    ):
        cli_main(args)


def test_a_checkpoint_from_before_the_duet_package_name_still_loads(gan_checkpoint, mnist_dir):
    from duet.lightning_modules import GAN
    from duet.lightning_modules.checkpoints import load_duet_module

    checkpoint = torch.load(gan_checkpoint, weights_only=True)
    assert checkpoint["duet_module"] == "duet.lightning_modules.gan.GAN"
    checkpoint["duet_module"] = "lightning_modules.gan.GAN"  # as duet 0.1 wrote it
    torch.save(checkpoint, gan_checkpoint)
    module, _ = load_duet_module(gan_checkpoint, GAN, "a GAN")
    assert type(module) is GAN
    cli = cli_main(gan_args(mnist_dir, f"--ckpt_path={gan_checkpoint}", "--trainer.max_steps=3"))
    assert cli.trainer.global_step == 3


def test_checkpoint_of_another_size_loads_nothing(gan_checkpoint, mnist_dir):
    from duet.lightning_modules import GAN
    from tests.conftest import tiny_mnist, tiny_trainer

    module = GAN(noise_dim=7)  # the checkpoint's generator takes 96 noise dimensions
    before = {name: value.clone() for name, value in module.state_dict().items()}
    trainer = tiny_trainer(gan_checkpoint.parent, max_steps=3)
    with pytest.raises(
        CheckpointError, match=r"generator\.net\.0\.weight: checkpoint \(1024, 96\)"
    ):
        trainer.fit(module, datamodule=tiny_mnist(mnist_dir), ckpt_path=gan_checkpoint)
    assert all(torch.equal(before[name], value) for name, value in module.state_dict().items())


def test_sigkill_mid_training_leaves_a_loadable_last_checkpoint(mnist_dir, tmp_path):
    command = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        *gan_args(mnist_dir, "--trainer.max_steps=100000", "--trainer.max_epochs=-1"),
        "--config",
        str(tmp_path / "every_step.yaml"),
    ]
    (tmp_path / "every_step.yaml").write_text(
        "trainer:\n  callbacks:\n    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        "      init_args: {save_last: true, every_n_train_steps: 1}\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    last = tmp_path / "runs" / "gan" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (last.exists() and last.stat().st_size > 0):
        time.sleep(0.2)
    time.sleep(1.5)  # well inside the stream of per-iteration checkpoint writes
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    checkpoint = torch.load(last, weights_only=False)
    killed_at = checkpoint["global_step"]
    assert killed_at >= 1
    cli = cli_main(gan_args(mnist_dir, f"--trainer.max_steps={killed_at + 2}", "--ckpt_path=last"))
    assert cli.trainer.global_step == killed_at + 2


def test_a_resume_that_changes_a_module_setting_is_refused_naming_both(gan_checkpoint, mnist_dir):
    args = gan_args(mnist_dir, f"--ckpt_path={gan_checkpoint}", "--model.init_args.noise_dim=64")
    with pytest.raises(
        CheckpointError, match=r"model\.noise_dim is 64 here but 96 in the checkpoint"
    ):
        cli_main(args)


def test_a_setting_left_at_its_default_takes_the_checkpoints_value(mnist_dir, tmp_path):
    cli_main(gan_args(mnist_dir, "--trainer.max_steps=2", "--model.init_args.noise_dim=64"))
    checkpoint = tmp_path / "runs" / "gan" / "version_0" / "checkpoints" / "last.ckpt"
    cli = cli_main(gan_args(mnist_dir, f"--ckpt_path={checkpoint}", "--trainer.max_steps=3"))
    assert cli.model.noise_dim == 64 and cli.trainer.global_step == 3


def test_a_resume_applies_and_names_a_changed_learning_rate(gan_checkpoint, mnist_dir, caplog):
    lr = "--model.init_args.generator_optimizer.init_args.lr=1e-05"
    with caplog.at_level(logging.INFO):
        cli = cli_main(
            gan_args(mnist_dir, f"--ckpt_path={gan_checkpoint}", lr, "--trainer.max_steps=3")
        )
    d_optimizer, g_optimizer = cli.trainer.optimizers
    assert g_optimizer.param_groups[0]["lr"] == 1e-05
    assert d_optimizer.param_groups[0]["lr"] == 1e-03
    assert "generator_optimizer: lr 0.001 → 1e-05" in caplog.text
    assert "discriminator_optimizer" not in caplog.text


def test_an_unchanged_resume_keeps_the_settings_and_says_nothing(gan_checkpoint, mnist_dir, caplog):
    with caplog.at_level(logging.INFO):
        cli = cli_main(
            gan_args(mnist_dir, f"--ckpt_path={gan_checkpoint}", "--trainer.max_steps=3")
        )
    assert [opt.param_groups[0]["lr"] for opt in cli.trainer.optimizers] == [1e-03, 1e-03]
    assert "optimizer settings" not in caplog.text


class FailsInIteration(L.Callback):
    """Raises ``error`` at the start of iteration ``iteration`` (counting from 1)."""

    def __init__(self, iteration: int, error: BaseException) -> None:
        self.iteration, self.error = iteration, error

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step + 1 == self.iteration:
            raise self.error


def crash(mnist_dir, tmp_path, error):
    from duet.callbacks import CheckpointOnException
    from duet.lightning_modules import GAN
    from tests.conftest import tiny_mnist, tiny_trainer

    callbacks = [
        CheckpointOnException(),
        ModelCheckpoint(tmp_path / "ckpt", every_n_train_steps=100),
    ]
    callbacks.append(FailsInIteration(4, error))
    trainer = tiny_trainer(tmp_path, max_steps=10, callbacks=callbacks, enable_checkpointing=True)
    with pytest.raises(type(error)):
        trainer.fit(GAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    return tmp_path / "ckpt" / "on_exception.ckpt"


def test_a_crash_leaves_the_state_of_its_last_complete_iteration(mnist_dir, tmp_path, capsys):
    saved = crash(mnist_dir, tmp_path, RuntimeError("a bug in iteration 4"))
    assert torch.load(saved, weights_only=True)["global_step"] == 3
    assert f"after iteration 3; its state is saved in {saved}" in capsys.readouterr().err


def test_a_nan_leaves_no_crash_checkpoint(mnist_dir, tmp_path):
    assert not crash(mnist_dir, tmp_path, FloatingPointError("nan")).exists()


def test_run_checkpoints_are_added_where_a_list_lacks_them_before_the_model_checkpoint():
    grid, periodic = SampleGrid(), ModelCheckpoint()
    added = with_run_checkpoints([grid, periodic])
    assert [type(c) for c in added] == [
        SampleGrid,
        SaveFinalCheckpoint,  # before ModelCheckpoint: its on_train_end must run first
        CheckpointOnException,
        ModelCheckpoint,
    ]
    assert added[0] is grid and added[3] is periodic
    assert with_run_checkpoints(added) == added  # nothing twice
    alone = with_run_checkpoints([])
    assert [type(c) for c in alone] == [SaveFinalCheckpoint, CheckpointOnException]


@pytest.mark.parametrize("config", ["gan", "actenv_cartpole"])
def test_every_experiment_saves_the_state_at_a_crash(config, mnist_dir):
    data = [f"--data.data_dir={mnist_dir}"] if config == "gan" else []
    cli = cli_main(["--config", config, *data], run=False)
    kinds = [type(callback) for callback in cli.trainer.callbacks]
    assert kinds.count(CheckpointOnException) == 1 and kinds.count(SaveFinalCheckpoint) == 1
    assert kinds.index(SaveFinalCheckpoint) < kinds.index(ModelCheckpoint)
