"""Every experiment config runs through the real CLI; a short real run writes one run folder."""

import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ProgressBar

from duet.datamodules.idx import MNISTFilesError
from duet.scripts.train import cli_main
from tests.conftest import write_mnist

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT_CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    # LightningCLI warns when pytest's own arguments sit in sys.argv beside args=[...].
    monkeypatch.setattr(sys, "argv", ["duet"])


def test_there_is_a_config_per_gan_variant():
    names = {path.stem for path in EXPERIMENT_CONFIGS}
    assert {"gan", "lsgan", "dcgan", "wgan_gp"} <= names


def small_data_args(config: Path, mnist_dir: Path) -> list[str]:
    """Overrides that keep a config's data small: tiny MNIST files, or a short prefill."""
    data_class = yaml.safe_load(config.read_text())["data"]["class_path"]
    if data_class == "duet.datamodules.MNISTDataModule":
        return [f"--data.data_dir={mnist_dir}", "--data.batch_size=16"]
    if data_class == "duet.datamodules.ImageDataModule":
        images = mnist_dir.parent / "images.pt"
        torch.save(torch.rand(8, 3, 40, 40), images)
        return [f"--data.init_args.source={images}", "--data.batch_size=4"]
    # The collector is the last callback, which --trainer.callbacks.init_args addresses. A
    # random Acrobot episode runs to its 500-step limit: the prefill must end one.
    return ["--trainer.callbacks.init_args.prefill_steps=600", "--data.batch_size=32"]


@pytest.mark.parametrize("config", EXPERIMENT_CONFIGS, ids=lambda path: path.stem)
def test_fast_dev_run_of_every_config(config, mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(config), "--trainer.fast_dev_run=1"]
    cli = cli_main(args + small_data_args(config, mnist_dir))
    assert cli.trainer.global_step == 1
    assert cli.trainer.state.finished
    # Lightning's debugging run writes no checkpoints, samples or plots (the data is the test's).
    assert {path.name for path in tmp_path.iterdir()} <= {"images.pt", "mnist"}


@pytest.mark.parametrize("dataset", ["FashionMNIST", "KMNIST"])
def test_a_gan_config_trains_on_another_dataset_by_its_name_alone(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_mnist(tmp_path / "data", num_train=100, num_test=20, dataset=dataset)  # no MNIST there
    config = REPO / "configs" / "gan.yaml"
    args = ["fit", "--config", str(config), "--trainer.fast_dev_run=2", f"--data.dataset={dataset}"]
    cli = cli_main([*args, f"--data.data_dir={tmp_path / 'data'}", "--data.batch_size=16"])
    assert cli.trainer.global_step == 2 and cli.datamodule.hparams.dataset == dataset


@pytest.mark.parametrize(("name", "epochs"), [("gan", 10), ("lsgan", 10), ("dcgan", 5)])
def test_gan_configs_keep_the_reference_schedule_and_hyperparameters(name, epochs):
    config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    assert config["trainer"]["max_epochs"] == epochs
    model = config["model"]["init_args"]
    assert model["noise_dim"] == 96
    for key in ("generator_optimizer", "discriminator_optimizer"):
        # fused: the same Adam update in one kernel (lightning_modules/gan.py: reference_adam)
        assert model[key]["init_args"] == {"lr": 1e-3, "betas": [0.5, 0.999], "fused": True}
    assert config["data"]["init_args"]["batch_size"] == 128
    assert config["data"]["init_args"]["val_size"] == 0  # every training image, as the reference


def test_a_short_run_writes_config_checkpoints_samples_and_metrics_in_one_folder(
    mnist_dir, tmp_path
):
    callbacks = tmp_path / "callbacks.yaml"  # a second --config replaces the callback list
    callbacks.write_text(
        "trainer:\n  callbacks:\n"
        "    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        "      init_args: {save_last: true}\n"
        "    - {class_path: duet.callbacks.SampleGrid, init_args: {every_n_iterations: 3}}\n"
    )
    cli_main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "gan.yaml"),
            f"--data.data_dir={mnist_dir}",
            "--data.batch_size=16",
            "--trainer.max_steps=6",
            "--trainer.log_every_n_steps=2",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--config",
            str(callbacks),
            "--trainer.enable_progress_bar=false",
        ]
    )
    run = tmp_path / "gan" / "version_0"
    assert (run / "config.yaml").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "iter_000003.png",
        "iter_000006.png",
    ]
    metrics = (run / "metrics.csv").read_text().splitlines()
    assert "train/d_loss" in metrics[0] and "train/g_loss" in metrics[0]
    assert len(metrics) == 1 + 3  # header + steps 2, 4 and 6
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["class_path"] == "duet.lightning_modules.GAN"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 6
    assert checkpoint["duet_module"] == "duet.lightning_modules.gan.GAN"


def test_optimizers_are_configurable_from_the_command_line(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "gan.yaml"),
            "--trainer.fast_dev_run=1",
            f"--data.data_dir={mnist_dir}",
            "--model.generator_optimizer=torch.optim.SGD",
            "--model.generator_optimizer.lr=0.05",
        ]
    )
    discriminator_optimizer, generator_optimizer = cli.trainer.optimizers
    assert isinstance(generator_optimizer, torch.optim.SGD)
    assert generator_optimizer.defaults["lr"] == 0.05
    assert isinstance(discriminator_optimizer, torch.optim.Adam)


def test_missing_mnist_fails_with_the_data_dir_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MNISTFilesError, match=r"--data\.data_dir"):
        cli_main(
            [
                "fit",
                "--config",
                str(REPO / "configs" / "gan.yaml"),
                "--trainer.fast_dev_run=1",
                f"--data.data_dir={tmp_path / 'empty'}",
                "--data.download=false",
            ]
        )


def test_actenv_config_reproduces_the_seed():
    config = yaml.safe_load((REPO / "configs" / "actenv_cartpole.yaml").read_text())
    collector = config["trainer"]["callbacks"][-1]
    assert collector["class_path"] == "duet.callbacks.GymCollector"
    assert collector["init_args"] == {
        "env_id": "CartPole-v1",
        "num_envs": 1,
        "seed": 0,
        "prefill_steps": 100_000,
        "explore_start": 1.0,
        "explore_stop": 0.01,
        "decay_rate": 1e-4,
        "return_scale": 500.0,
        "stop_mean_return": 500.0,
        "max_episodes": 1_111,
    }
    model = config["model"]["init_args"]
    assert model["hidden_size"] == 8 and model["optimizer"]["init_args"] == {"lr": 1e-4}
    assert not model["trainable_heads"] and not model["batchnorm_training"]
    assert config["data"]["init_args"]["capacity"] == 100_000
    assert config["data"]["init_args"]["batch_size"] == 1_000


def test_metrics_piece_adds_fid_to_a_gan_config(mnist_dir, tmp_path, monkeypatch):
    from tests.test_quality import MNISTClassifier, tiny_mnist, tiny_trainer

    trainer = tiny_trainer(tmp_path / "c", max_steps=1)
    trainer.fit(MNISTClassifier(feature_size=16), datamodule=tiny_mnist(mnist_dir))
    (tmp_path / "checkpoints").mkdir()
    trainer.save_checkpoint(tmp_path / "checkpoints" / "mnist_classifier.ckpt")
    monkeypatch.chdir(tmp_path)  # the piece reads checkpoints/mnist_classifier.ckpt
    cli = cli_main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "gan.yaml"),
            "--config",
            str(REPO / "configs" / "metrics" / "fid.yaml"),
            f"--data.data_dir={mnist_dir}",
            "--data.batch_size=16",
            "--data.val_size=60",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.callbacks.init_args.num_samples=60",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert "val/fid" in cli.trainer.callback_metrics
    best = Path(cli.trainer.checkpoint_callback.best_model_path)
    assert best.is_file() and best.name == "best-step=2.ckpt"
    assert cli.trainer.checkpoint_callback.monitor == "val/fid"


@pytest.mark.parametrize(
    ("with_final", "max_steps", "last_step"), [(True, 7, 7), (False, 7, 6), (True, 2, 2)]
)
def test_last_checkpoint_holds_the_final_state_between_periodic_saves(
    with_final, max_steps, last_step, mnist_dir, tmp_path
):
    final = "    - class_path: duet.callbacks.SaveFinalCheckpoint\n" if with_final else ""
    callbacks = tmp_path / "callbacks.yaml"
    callbacks.write_text(
        "trainer:\n  callbacks:\n" + final + "    - class_path: lightning.pytorch.callbacks."
        "ModelCheckpoint\n      init_args: {save_last: true, every_n_train_steps: 3}\n"
    )
    cli = cli_main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "gan.yaml"),
            "--config",
            str(callbacks),
            f"--data.data_dir={mnist_dir}",
            "--data.batch_size=16",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--trainer.max_steps={max_steps}",  # periodic checkpoints at 3 and 6
            "--trainer.enable_progress_bar=false",
        ]
    )
    folder = tmp_path / "gan" / "version_0" / "checkpoints"
    assert [p.name for p in folder.glob("last*.ckpt")] == ["last.ckpt"]  # no last-v1.ckpt
    checkpoint = torch.load(folder / "last.ckpt")
    # Without SaveFinalCheckpoint, Lightning 2.6 leaves last.ckpt at the last periodic save.
    assert checkpoint["global_step"] == last_step
    if with_final:
        final_state = cli.model.state_dict()
        assert all(torch.equal(v, checkpoint["state_dict"][k]) for k, v in final_state.items())


@pytest.mark.parametrize(
    ("extra", "refresh_rate"),
    [
        ([], 10),
        (["--progress_bar_refresh_rate=3"], 3),
        (["--trainer.enable_progress_bar=false"], None),
    ],
)
def test_progress_bar_redraws_at_the_configured_rate(extra, refresh_rate, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--config", str(REPO / "configs" / "gan.yaml"), *extra]
    trainer = cli_main(args, run=False).trainer
    bar = trainer.progress_bar_callback
    assert (bar and bar.refresh_rate) == refresh_rate
    bars = [c for c in trainer.callbacks if isinstance(c, ProgressBar)]
    assert len(bars) == (refresh_rate is not None)  # replaced, not added


def test_a_refresh_rate_below_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="progress_bar_refresh_rate must be at least 1"):
        cli_main(
            ["--config", str(REPO / "configs" / "gan.yaml"), "--progress_bar_refresh_rate=0"],
            run=False,
        )
