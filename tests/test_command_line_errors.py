"""Every mistake a user can make on the ``duet`` command line ends in one ``error:`` line that
names the key or file, without a traceback or a usage block, and a non-zero exit status; and an
option given before a ``--config`` still overrides it."""

import pytest
import torch

from duet.scripts.command import main as duet
from duet.scripts.train import cli_main
from tests.test_wandb_and_checkpoints import REPO, isolated  # noqa: F401

GAN = ["fit", "--config", str(REPO / "configs" / "gan.yaml")]
AGENT = ["fit", "--config", str(REPO / "configs" / "actenv_cartpole.yaml")]
FILES = {
    "typo.yaml": "model:\n  init_args:\n    nosie_dim: 5\n",
    "trainer_typo.yaml": "trainer:\n  max_epoch: 3\n",
    "broken.yaml": "trainer:\n  max_steps: [1\n",
    "not_a_checkpoint.ckpt": "plain text",
    "a_file": "",
}

# (arguments, a part of the one error line); FILE names a file written by the test.
CASES = [
    (
        [*GAN, "--model.init_args.nosie_dim", "5"],
        "model.nosie_dim (command line) is not an option of duet.lightning_modules.GAN; "
        "did you mean noise_dim?",
    ),
    (
        [*GAN, "--config", "typo.yaml"],
        "model.nosie_dim (typo.yaml, line 3) is not an option of duet.lightning_modules.GAN; "
        "did you mean noise_dim?",
    ),
    (
        [*GAN, "--config", "trainer_typo.yaml"],
        "trainer.max_epoch (trainer_typo.yaml, line 2) is not an option of lightning.Trainer; "
        "did you mean trainer.max_epochs?",
    ),
    (
        [*GAN, "--model.init_args.stabilizers.ema_decey", "0.9"],
        "model.stabilizers.ema_decey (command line) is not an option of "
        "duet.lightning_modules.GAN; did you mean stabilizers.ema_decay?",
    ),
    (
        [*AGENT, "--collector.nvm_envs", "2"],
        "collector.nvm_envs (command line) is not an option of duet.callbacks.GymCollector; "
        "did you mean num_envs?",
    ),
    ([*GAN, "--trainerx.foo", "1"], "trainerx.foo (command line) is not an option"),
    ([*GAN, "--trainer.max_epochs", "abc"], "trainer.max_epochs: expected int or None, got 'abc'"),
    ([*GAN, "--data.batch_size", "abc"], "data.batch_size: expected int or None, got 'abc'"),
    ([*GAN, "--seed_everything", "abc"], "seed_everything: expected bool or int, got 'abc'"),
    ([*GAN, "--trainer.precision", "7"], "trainer.precision: expected one of 64, 32, 16 or"),
    (
        [*GAN, "--model", "duet.lightning_modules.Nope"],
        "model: duet.lightning_modules.Nope: module 'duet.lightning_modules' has no attribute",
    ),
    ([*GAN, "--model.ema_decay", "0.9"], "model.ema_decay moved in duet 0.3"),
    (
        [*GAN, "--wandb.enabled=true", "--wandb.mode", "bogus"],
        "wandb.mode: expected one of 'online', 'offline' or None, got 'bogus'",
    ),
    ([*GAN, "--trainer.devices", "-3"], "trainer settings refused by Lightning: `devices`"),
    ([*GAN, "--trainer.strategy", "nonsense"], "invalid strategy name: `strategy='nonsense'`"),
    ([*GAN, "--trainer.max_steps", "-5"], "Lightning refuses these settings: `max_steps` must"),
    ([*GAN, "--progress_bar_refresh_rate", "0"], "progress_bar_refresh_rate must be at least 1"),
    ([*GAN, "--data.val_size", "-1"], "val_size=-1 is out of range"),
    ([*GAN, "--ckpt_path", "missing.ckpt"], "Checkpoint missing.ckpt does not exist"),
    ([*GAN, "--ckpt_path", "not_a_checkpoint.ckpt"], "not_a_checkpoint.ckpt cannot be read"),
    ([*GAN, "--ckpt_path", "last"], "--ckpt_path last: no checkpoint to resume in runs/gan"),
    ([*GAN, "--config", "broken.yaml"], "config broken.yaml is not valid YAML at line 3"),
    (["fit", "--config", "gann"], "config 'gann': no such file here"),
    (
        [*GAN, "--trainer.max_steps=1", "--trainer.logger.init_args.save_dir", "a_file"],
        "a_file/gan: Not a directory; check that the path is right",
    ),
    (["fitt"], "unknown command 'fitt'"),
    (["sample"], "duet sample: the following arguments are required: checkpoint, --out"),
    (["sample", "x.ckpt", "--out", "a.png", "--num", "x"], "argument --num: invalid int value"),
    (["sample", "missing.ckpt", "--out", "a.png"], "Checkpoint missing.ckpt does not exist"),
    (["sample", "not_a_checkpoint.ckpt", "--out", "a.png"], "cannot be read"),
    (["evaluate", "missing.ckpt"], "Checkpoint missing.ckpt does not exist"),
    (["evaluate", "x.ckpt", "--num-samples", "5"], "unrecognized arguments: --num-samples"),
    (["play", "missing.ckpt"], "Checkpoint missing.ckpt does not exist"),
    (["play", "missing.ckpt", "--episodes", "0"], "--episodes must be at least 1, got 0"),
    (["configs", "show", "nope"], "config 'nope': no such file here"),
    (["configs", "show"], "duet configs show: the following arguments are required: name"),
    (["sweep", "nope.yaml"], "argument sweep: config 'nope.yaml': no such file here"),
    (["sweep-gan", "nope.yaml"], "argument sweep: config 'nope.yaml': no such file here"),
]


def status_of(args: list[str]) -> int:
    try:
        return duet(args)
    except SystemExit as stop:  # a parser's exit
        return stop.code if isinstance(stop.code, int) else 1


def case_id(args: list[str]) -> str:
    """The arguments after the config a case trains, or all of a tool's."""
    return " ".join(args[3:] if args[:2] == ["fit", "--config"] else args)


@pytest.mark.parametrize(("args", "said"), CASES, ids=[case_id(args) for args, _ in CASES])
def test_every_mistake_is_one_error_line(args, said, tmp_path, mnist_dir, capsys):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    data = [f"--data.data_dir={mnist_dir}"] if args[0] == "fit" and "gan.yaml" in str(args) else []
    capsys.readouterr()
    assert status_of([*args, *data]) != 0
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err[-2000:]
    assert said in errors[0], errors[0]
    assert "Traceback" not in err and "usage:" not in err, err[-2000:]


def test_gpu_requested_without_one_is_one_line(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert status_of([*GAN, "--trainer.accelerator", "gpu"]) == 1
    line = capsys.readouterr().err.splitlines()[0]
    assert line.startswith("error: trainer.accelerator is gpu, but PyTorch ")
    assert "finds no usable CUDA GPU here; use --trainer.accelerator cpu (or auto), or " in line


@pytest.mark.parametrize("before", [True, False])
def test_an_option_overrides_every_config_wherever_it_stands(before, mnist_dir):
    options = ["--trainer.max_epochs", "1", f"--data.data_dir={mnist_dir}"]
    args = [*options, *GAN[1:]] if before else [*GAN[1:], *options]  # run=False: no "fit"
    config = cli_main(args, run=False).config
    assert config["trainer"]["max_epochs"] == 1  # gan.yaml says 10
    assert config["data"]["init_args"]["data_dir"] == str(mnist_dir)


def test_a_folder_option_naming_a_file_says_so(tmp_path):
    from duet.scripts.errors import settings_error

    a_file = tmp_path / "a_file"
    a_file.write_text("")
    try:
        a_file.mkdir(parents=True, exist_ok=True)  # what a video or log folder's creation does
    except FileExistsError as error:
        message = settings_error(error)
    assert message == (
        f"{a_file}: a file is there, where a folder is needed; check that the path is right and "
        "that you may read and write there."
    )
