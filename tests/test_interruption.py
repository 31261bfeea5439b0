"""Ctrl-C and SIGTERM stop training between iterations: the state of that moment is saved,
``--ckpt_path last`` finds it, the resumed run ends exactly as an uninterrupted one, and the
command exits with 128 + the signal."""

import csv
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from duet.callbacks.interruption import StopBetweenIterations
from duet.scripts.command import main as duet
from duet.scripts.train import cli_main
from tests.signals import signalled_at
from tests.test_resume import assert_same_tensors
from tests.test_wandb_and_checkpoints import REPO, gan_args, isolated  # noqa: F401


@pytest.fixture
def guarded():
    """A signal that reaches no handler of duet's or Lightning's is ignored here, so that the
    test fails by its assertions instead of the signal ending the test process."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in signals}
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # Lightning composes with it
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def logged(run: Path, name: str) -> dict[int, str]:
    """The values of ``name`` that the run's CSV logger wrote, by step."""
    with (run / "metrics.csv").open() as file:
        return {int(row["step"]): row[name] for row in csv.DictReader(file) if row.get(name)}


def logged_losses(run: Path) -> dict[int, str]:
    return logged(run, "train/d_loss")


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
    signalled = signalled_at(5, signum)
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


@pytest.fixture
def slurm_job(monkeypatch, tmp_path):
    """The environment of SLURM job 4242 (one task), with an ``scontrol`` on PATH that records
    its arguments in ``scontrol.txt``."""
    tools = tmp_path / "bin"
    tools.mkdir()
    scontrol = tools / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.txt"}\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    for name, value in {
        "SLURM_JOB_ID": "4242",
        "SLURM_NTASKS": "1",
        "SLURM_JOB_NAME": "gan",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    return tmp_path / "scontrol.txt"


def test_slurms_requeue_signal_saves_requeues_and_the_requeued_job_resumes_exactly(
    mnist_dir, tmp_path, guarded, slurm_job, monkeypatch, capsys
):
    whole = cli_main(gan_args(mnist_dir, "--trainer.max_steps=8"))
    capsys.readouterr()
    status = duet(gan_args(mnist_dir, "--trainer.max_steps=8", *signalled_at(5, signal.SIGUSR1)))
    assert status == 128 + signal.SIGUSR1
    assert (
        "stopped: training stopped by SIGUSR1 after iteration 5; SLURM job 4242 requeued: it "
        "resumes from this state." in capsys.readouterr().err
    )
    assert slurm_job.read_text() == "requeue 4242\n"
    saved = Path("runs/gan/version_1/checkpoints/on_exception.ckpt")
    assert torch.load(saved, weights_only=True)["global_step"] == 5
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # what SLURM sets in the requeued job
    resumed = cli_main(gan_args(mnist_dir, "--trainer.max_steps=8"))  # the same command
    assert f"Resuming from {saved} (saved after iteration 5)." in capsys.readouterr().err
    assert resumed.trainer.global_step == 8
    assert_same_tensors(state(whole), state(resumed), "state")


def test_a_requeued_job_with_nothing_saved_starts_afresh_and_says_so(
    mnist_dir, tmp_path, slurm_job, monkeypatch, capsys
):
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    run = cli_main(gan_args(mnist_dir, "--trainer.max_steps=2"))
    assert run.trainer.global_step == 2 and run.trainer.ckpt_path is None
    assert (
        "Requeued SLURM job: no checkpoint of this experiment yet; starting afresh."
        in capsys.readouterr().err
    )


def agent_args(*extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(REPO / "configs" / "actenv_cartpole.yaml"),
        "--data.capacity=1000",
        "--data.batch_size=32",
        "--collector.prefill_steps=200",
        "--trainer.max_steps=8",
        "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
        *extra,
    ]


def test_the_agent_stopped_by_sigterm_resumes_with_last_exactly(tmp_path, guarded, capsys):
    whole = cli_main(agent_args())
    assert duet(agent_args(*signalled_at(5, signal.SIGTERM))) == 143
    saved = Path("runs/actenv_cartpole/version_1/checkpoints/on_exception.ckpt")
    assert torch.load(saved, weights_only=False)["global_step"] == 5
    capsys.readouterr()
    resumed = cli_main(agent_args("--ckpt_path=last"))
    assert f"Resuming from {saved} (saved after iteration 5)." in capsys.readouterr().err
    assert resumed.trainer.global_step == 8
    assert_same_tensors(state(whole), state(resumed), "state")
    runs = Path("runs/actenv_cartpole")
    losses = [logged(runs / f"version_{n}", "train/a_loss") for n in range(3)]
    assert losses[1] | losses[2] == losses[0] and sorted(losses[2]) == [5, 6, 7]


class TwoProcessTrainer:
    """What StopBetweenIterations reads of a trainer of a 2-process run (the all-reduce runs in
    a real gloo group of this one process, so its values are this process's own)."""

    world_size = 2

    def __init__(self) -> None:
        self.strategy = SimpleNamespace(root_device=torch.device("cpu"))
        self._signal_connector = SimpleNamespace(received_sigterm=False)

    @property
    def received_sigterm(self) -> bool:
        return self._signal_connector.received_sigterm


@pytest.fixture
def process_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1
    )
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize(
    ("seconds", "agreements", "stopped_after"),
    [(0.5, [1, 33, 65], 65), (0.0, list(range(1, 41)), 40)],
)
def test_processes_agree_on_a_stop_at_the_pace_asked(
    seconds, agreements, stopped_after, process_group, monkeypatch
):
    """At 1/64 s an iteration, 32 iterations fill half a second: after the first agreement the
    processes agree every 32 iterations, and a signal received in iteration 40 stops them after
    iteration 65; asked to agree after every iteration, after iteration 40."""
    clock = [100.0]
    monkeypatch.setattr("duet.callbacks.interruption.time.monotonic", lambda: clock[0])
    stop, trainer = StopBetweenIterations(agree_every_seconds=seconds), TwoProcessTrainer()
    stop.stretch, stop.done, stop.since = 1, 0, clock[0]
    agreed = []
    for iteration in range(1, 200):
        clock[0] += 1 / 64
        if iteration == 40:
            stop.received = signal.SIGTERM
        stop.on_train_batch_end(trainer, None, None, None, iteration)
        if stop.done == 0:  # it agreed after this iteration
            agreed.append(iteration)
        if trainer.received_sigterm:
            break
    assert agreed == agreements and iteration == stopped_after
