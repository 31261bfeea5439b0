"""Ctrl-C and SIGTERM stop training between iterations: the state of that moment is saved,
``--ckpt_path last`` finds it, the resumed run ends exactly as an uninterrupted one, and the
command exits with 128 + the signal."""

import csv
import signal
from pathlib import Path

import pytest
import torch

from duet.scripts.command import main as duet
from duet.scripts.train import cli_main
from tests.test_resume import assert_same_tensors
from tests.test_wandb_and_checkpoints import gan_args, isolated  # noqa: F401


@pytest.fixture
def guarded():
    """A signal that reaches no handler of duet's or Lightning's is ignored here, so that the
    test fails by its assertions instead of the signal ending the test process."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (2, 15)}
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # Lightning composes with it
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def logged_losses(run: Path) -> dict[int, str]:
    with (run / "metrics.csv").open() as file:
        return {
            int(row["step"]): row["train/d_loss"]
            for row in csv.DictReader(file)
            if row["train/d_loss"]
        }


def state(cli) -> dict:
    return {
        "weights": cli.model.state_dict(),
        "optimizers": {
            str(index): {"state": optimizer.state_dict()["state"]}
            for index, optimizer in enumerate(cli.trainer.optimizers)
        },
    }


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_epoch_saves_the_state_and_last_resumes_it_exactly(
    signum, status, mnist_dir, tmp_path, guarded, capsys
):
    whole = cli_main(gan_args(mnist_dir, "--trainer.max_steps=8"))  # 300 images: 18 an epoch
    signalled = [
        "--trainer.callbacks+=tests.signals.SignalAt",
        "--trainer.callbacks.init_args.iteration=5",
        f"--trainer.callbacks.init_args.signum={int(signum)}",
    ]
    capsys.readouterr()
    assert duet(gan_args(mnist_dir, "--trainer.max_steps=8", *signalled)) == status
    err = capsys.readouterr().err
    name = signal.Signals(signum).name
    assert f"stopped: training stopped by {name} after iteration 5." in err
    saved = Path("runs/gan/version_1/checkpoints/on_exception.ckpt")
    assert torch.load(saved, weights_only=True)["global_step"] == 5
    assert not saved.with_name("last.ckpt").exists()  # before any periodic checkpoint
    resumed = cli_main(gan_args(mnist_dir, "--trainer.max_steps=8", "--ckpt_path=last"))
    assert f"Resuming from {saved} (saved after iteration 5)." in capsys.readouterr().err
    assert resumed.trainer.global_step == 8
    assert_same_tensors(state(whole), state(resumed), "state")
    runs = Path("runs/gan")
    interrupted, continued = logged_losses(runs / "version_1"), logged_losses(runs / "version_2")
    assert interrupted | continued == logged_losses(runs / "version_0")
    assert sorted(interrupted) == [0, 1, 2, 3, 4] and sorted(continued) == [5, 6, 7]


def test_last_prefers_the_newer_of_last_and_on_exception(mnist_dir, tmp_path, guarded):
    cli_main(gan_args(mnist_dir, "--trainer.max_steps=3"))  # version_0: last.ckpt at 3
    older = Path("runs/gan/version_0/checkpoints/last.ckpt")
    newer = older.with_name("on_exception.ckpt")
    newer.write_bytes(older.read_bytes())
    resumed = cli_main(gan_args(mnist_dir, "--trainer.max_steps=4", "--ckpt_path=last"))
    assert resumed.trainer.ckpt_path == str(newer)
