"""Every experiment config runs through the real CLI, composed with configs/base.yaml; a short
real run writes one run folder."""

import contextlib
import dataclasses
import importlib
import io
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ProgressBar

from duet.datamodules.idx import MNISTFilesError
from duet.lightning_modules.actenv_options import ActEnvLosses
from duet.scripts.configs import base_config
from duet.scripts.train import cli_main
from tests.conftest import write_mnist

REPO = Path(__file__).resolve().parents[1]
BASE = base_config()
EXPERIMENT_CONFIGS = sorted(path for path in (REPO / "configs").glob("*.yaml") if path != BASE)


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    # LightningCLI warns when pytest's own arguments sit in sys.argv beside args=[...].
    monkeypatch.setattr(sys, "argv", ["duet"])


def test_there_is_a_config_per_gan_variant():
    names = {path.stem for path in EXPERIMENT_CONFIGS}
    assert {"gan", "lsgan", "dcgan", "wgan_gp"} <= names
    assert BASE == REPO / "configs" / "base.yaml"  # the packaged base is the repository's


def resolved(*args: str) -> dict:
    """The fit config that ``duet fit ARGS`` resolves (its ``--print_config``): base.yaml,
    then the ``--config`` files and options in ``args``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as printed:
        cli_main(["fit", *args, "--print_config"])
    assert printed.value.code == 0
    return yaml.safe_load(out.getvalue())


def leaves(node, path: tuple = ()):
    """(path, value) of every value of a YAML mapping; a list is one value."""
    if not isinstance(node, dict):
        yield path, node
        return
    for key, value in node.items():
        yield from leaves(value, (*path, key))


def build_optimizer(value) -> torch.optim.Optimizer:
    """The optimizer a resolved ``OptimizerCallable`` value makes: a function's import path
    (a module's default) or a ``class_path``/``init_args`` block."""
    params = [torch.nn.Parameter(torch.zeros(2))]
    path = value if isinstance(value, str) else value["class_path"]
    module, _, name = path.rpartition(".")
    make = getattr(importlib.import_module(module), name)
    return make(params) if isinstance(value, str) else make(params, **value["init_args"])


@pytest.mark.parametrize("config", EXPERIMENT_CONFIGS, ids=lambda path: path.stem)
def test_every_experiment_resolves_with_the_base(config):
    resolved_config = resolved("--config", str(config))
    trainer = resolved_config["trainer"]
    assert resolved_config["seed_everything"] == 0 and trainer["log_every_n_steps"] == 50
    logger = trainer["logger"]
    assert logger["class_path"] == "lightning.pytorch.loggers.CSVLogger"
    # runs/<config name>/version_N, where --ckpt_path last looks
    assert (logger["init_args"]["save_dir"], logger["init_args"]["name"]) == ("runs", config.stem)
    # SaveFinalCheckpoint and CheckpointOnException: added by the duet command to every run
    # (tests/test_wandb_and_checkpoints.py), so no config lists them.
    callbacks = [callback["class_path"] for callback in trainer["callbacks"]]
    assert not {"duet.callbacks.SaveFinalCheckpoint", "duet.callbacks.CheckpointOnException"} & set(
        callbacks
    )
    checkpoints = [c for c in trainer["callbacks"] if c["class_path"].endswith(".ModelCheckpoint")]
    assert any(checkpoint["init_args"]["save_last"] for checkpoint in checkpoints)


@pytest.mark.parametrize("config", EXPERIMENT_CONFIGS, ids=lambda path: path.stem)
def test_no_experiment_restates_the_base(config):
    base = dict(leaves(yaml.safe_load(BASE.read_text())))
    own = yaml.safe_load(config.read_text())
    restated = [path for path, value in leaves(own) if base.get(path, object()) == value]
    assert not restated, restated
    assert "seed_everything" not in own  # 0, the CLI's default (scripts/train.py)
    assert "class_path" not in own["trainer"]["logger"]  # the base's CSVLogger; a name is its own


def test_options_after_the_configs_still_win(tmp_path):
    callbacks = tmp_path / "callbacks.yaml"  # a list replaces the base's and the experiment's
    callbacks.write_text("trainer:\n  callbacks:\n    - class_path: duet.callbacks.SampleGrid\n")
    gan = str(REPO / "configs" / "gan.yaml")
    config = resolved(
        *("--config", gan, f"--trainer.logger.init_args.save_dir={tmp_path}"),
        *("--trainer.log_every_n_steps=7", "--seed_everything=3"),
        "--trainer.callbacks.init_args.every_n_iterations=9",  # the last callback: the grid
    )
    trainer = config["trainer"]
    assert trainer["logger"]["init_args"]["name"] == "gan"
    assert trainer["logger"]["init_args"]["save_dir"] == str(tmp_path)
    assert (trainer["log_every_n_steps"], config["seed_everything"]) == (7, 3)
    assert trainer["callbacks"][-1]["init_args"]["every_n_iterations"] == 9
    assert len(trainer["callbacks"]) == 2  # the base's ModelCheckpoint, gan.yaml's sample grid
    replaced = resolved("--config", gan, "--config", str(callbacks))["trainer"]["callbacks"]
    assert [callback["class_path"] for callback in replaced] == ["duet.callbacks.SampleGrid"]


def test_a_config_of_ones_own_extends_the_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mine.yaml").write_text(
        "trainer: {max_steps: 5, logger: {init_args: {name: mine}}}\n"
        "model: {class_path: duet.lightning_modules.LSGAN}\n"
        "data: {class_path: duet.datamodules.MNISTDataModule}\n"
    )
    trainer = resolved("--config", "mine.yaml")["trainer"]
    assert trainer["logger"]["init_args"]["save_dir"] == "runs"
    assert trainer["logger"]["init_args"]["name"] == "mine"
    base = yaml.safe_load(BASE.read_text())["trainer"]["callbacks"]
    assert [c["class_path"] for c in trainer["callbacks"]] == [c["class_path"] for c in base]


def small_data_args(config: Path, mnist_dir: Path) -> list[str]:
    """Overrides that keep a config's data small: tiny MNIST files, or a short prefill."""
    data_class = yaml.safe_load(config.read_text())["data"]["class_path"]
    if data_class == "duet.datamodules.MNISTDataModule":
        return [f"--data.data_dir={mnist_dir}", "--data.batch_size=16"]
    if data_class == "duet.datamodules.ImageDataModule":
        images = mnist_dir.parent / "images.pt"
        torch.save(torch.rand(8, 3, 40, 40), images)
        return [f"--data.init_args.source={images}", "--data.batch_size=4"]
    # A random Acrobot episode runs to its 500-step limit: the prefill must end one.
    return ["--collector.prefill_steps=600", "--data.batch_size=32"]


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
    config = resolved("--config", str(REPO / "configs" / f"{name}.yaml"))
    assert config["trainer"]["max_epochs"] == epochs
    model = config["model"]["init_args"]
    assert model["noise_dim"] == 96
    for key in ("generator_optimizer", "discriminator_optimizer"):
        # fused: the same Adam update in one kernel (the module's default optimizer)
        optimizer = build_optimizer(model[key])
        assert isinstance(optimizer, torch.optim.Adam)
        assert {k: optimizer.defaults[k] for k in ("lr", "betas", "fused")} == {
            "lr": 1e-3,
            "betas": (0.5, 0.999),
            "fused": True,
        }
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
    # The whole resolved config: base.yaml's logger, gan.yaml's name and module defaults too.
    logger = saved["trainer"]["logger"]
    assert logger["class_path"] == "lightning.pytorch.loggers.CSVLogger"
    assert logger["init_args"] == {**logger["init_args"], "save_dir": str(tmp_path), "name": "gan"}
    assert saved["seed_everything"] == 0 and saved["model"]["init_args"]["noise_dim"] == 96
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


def test_actenv_config_reproduces_the_reference():
    config = resolved("--config", "actenv_cartpole")  # the config's values over the defaults
    collector = config["collector"]["init_args"]
    reference = {"env_id": "CartPole-v1", "num_envs": 1, "seed": 0, "prefill_steps": 100_000}
    assert {name: collector[name] for name in reference} == reference
    assert collector["exploration"] == {"start": 1.0, "stop": 0.01, "decay_rate": 1e-4, "hold": 1}
    assert collector["rating"] == {"return_scale": 500.0, "return_offset": 0.0, "discount": None}
    stopping = collector["stopping"]
    assert (stopping["mean_return"], stopping["max_episodes"]) == (500.0, 1_111)
    model = config["model"]["init_args"]
    shape = ("hidden_size", "encode_width", "trainable_heads", "batchnorm_training")
    assert [model["network"][name] for name in shape] == [8, None, False, False]
    assert model["losses"] == dataclasses.asdict(ActEnvLosses())  # the reference's four terms
    assert model["optimizer"]["class_path"] == "torch.optim.Adam"
    assert model["optimizer"]["init_args"]["lr"] == 1e-4
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
    # Without SaveFinalCheckpoint, Lightning 2.6 would leave last.ckpt at the last periodic save
    # (6); the duet command adds one to a list that lacks it.
    ("with_final", "max_steps", "last_step"),
    [(True, 7, 7), (False, 7, 7), (True, 2, 2)],
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
    assert checkpoint["global_step"] == last_step
    if max_steps == 7:
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
