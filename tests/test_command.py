"""The installed ``duet`` command: subcommands, help, version, and the one-line refusals of
subcommands and trainer settings that duet's modules cannot honour."""

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from torch.optim.lr_scheduler import StepLR

from duet.scripts.command import TOOLS, TRAINING, main
from duet.scripts.train import cli_main

REPO = Path(__file__).resolve().parents[1]
GAN = ["--config", str(REPO / "configs" / "gan.yaml")]
DUET = Path(sys.executable).parent / "duet"  # the console script pip installed


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["duet"])  # arguments are passed to main
    monkeypatch.delenv("DUET_DEBUG", raising=False)


def test_help_lists_every_command_and_version_is_the_packages(capsys):
    assert main(["--help"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line[:2] == "  "]
    assert listed == [*TRAINING, *TOOLS, "--version"]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"duet {version('duet')}\n"


@pytest.mark.parametrize("name", list(TOOLS))
def test_each_tool_runs_under_its_duet_name(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: duet {name} ")


def test_the_installed_console_script_is_this_command():
    result = subprocess.run([DUET, "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"duet {version('duet')}", result.stderr


def test_an_unknown_command_is_named_with_the_choices(capsys):
    assert main(["train"]) == 2
    assert "unknown command 'train'; choose one of: fit, validate" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("subcommand", "instead"), [("validate", "duet evaluate"), ("test", "duet evaluate")]
)
def test_validate_and_test_of_a_gan_point_to_evaluate(subcommand, instead, mnist_dir, capsys):
    assert main([subcommand, *GAN, f"--data.data_dir={mnist_dir}"]) == 1
    error = capsys.readouterr().err.splitlines()[0]
    assert error.startswith(f"error: duet {subcommand}: GAN has no ") and instead in error


def test_validate_of_the_agent_points_to_play(capsys):
    agent = ["--config", str(REPO / "configs" / "actenv_cartpole.yaml")]
    assert main(["validate", *agent]) == 1
    assert "ActEnvAgent has no validation_step; use `duet play" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "--trainer.gradient_clip_val=1.0",
            "optimization.generator_clip_norm / optimization.discriminator_clip_norm",
        ),
        ("--trainer.accumulate_grad_batches=4", "raise data.batch_size instead"),
    ],
)
def test_trainer_settings_of_automatic_optimization_are_refused(option, message, capsys):
    assert main(["fit", *GAN, option]) == 1
    error = capsys.readouterr().err.splitlines()[0]
    assert error.startswith(f"error: trainer.{option[10:].split('=')[0]}=") and message in error


def test_schedulers_and_clipping_are_configured_in_yaml(mnist_dir, tmp_path):
    options = tmp_path / "training.yaml"
    options.write_text(
        "model:\n"
        "  init_args:\n"
        "    optimization:\n"
        "      generator_scheduler:\n"
        "        class_path: torch.optim.lr_scheduler.StepLR\n"
        "        init_args: {step_size: 100, gamma: 0.5}\n"
        "      scheduler_interval: epoch\n"
        "      discriminator_clip_norm: 5.0\n"
    )
    cli = cli_main([*GAN, "--config", str(options)], run=False)
    optimizers, (config,) = cli.model.configure_optimizers()
    assert isinstance(config["scheduler"], StepLR) and config["scheduler"].step_size == 100
    assert config["scheduler"].optimizer is optimizers[1]  # the generator's
    assert cli.model.scheduler_interval == "epoch" and cli.model.clip_norms == [5.0, None]


@pytest.mark.parametrize("tool", ["sample", "evaluate", "play", "configs"])
def test_a_tools_help_loads_neither_torch_nor_lightning(tool):
    check = (
        "import sys\nfrom duet.scripts.command import main\n"
        f"try:\n    main([{tool!r}, '--help'])\n"
        "except SystemExit as exit:\n    assert not exit.code\n"
        "print(sorted({'torch', 'lightning', 'gymnasium'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_the_tools_light_copies_of_library_names_match_the_library():
    from duet.datamodules.mnist import DATASETS
    from duet.lightning_modules import quality
    from duet.scripts import evaluate

    assert tuple(DATASETS) == evaluate.DATASET_NAMES
    assert evaluate.DEFAULT_CLASSIFIER == quality.DEFAULT_CLASSIFIER


def test_an_epoch_limit_that_ends_the_run_before_max_steps_is_named(mnist_dir):
    # 300 images in batches of 128: 2 iterations an epoch, so one epoch ends at iteration 2.
    args = [*GAN, f"--data.data_dir={mnist_dir}", "--trainer.enable_progress_bar=false"]
    expected = r"trainer.max_steps=5 will not be reached: trainer.max_epochs=1 ends the run after "
    expected += r"iteration 2 \(2 iterations an epoch\); set --trainer.max_epochs -1"
    with pytest.warns(UserWarning, match=expected):
        cli = cli_main(["fit", *args, "--trainer.max_epochs=1", "--trainer.max_steps=5"])
    assert cli.trainer.global_step == 2
