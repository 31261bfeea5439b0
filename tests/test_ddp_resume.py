"""Two-process DDP runs resumed from their checkpoints: every process continues its own state
exactly, and the processes draw, sample and collect differently, before and after the resume."""

import pickle
import signal

import lightning as L
import numpy as np
import pytest
import torch

from duet.callbacks import GymCollector
from duet.datamodules import ExperienceDataModule, SuccessRating
from duet.lightning_modules import ActEnvAgent
from duet.scripts.train import cli_main
from tests.conftest import tiny_trainer, write_mnist
from tests.ddp_helpers import RecordRank
from tests.signals import signalled_at
from tests.test_ddp import REPO, launch_ddp
from tests.test_gym_collector import NO_STOP
from tests.test_resume import assert_same_tensors

RECORD_AND_SAVE = """
trainer:
  callbacks:
    - class_path: tests.ddp_helpers.RecordRank
      init_args: {{dirpath: {out}}}
    - class_path: duet.callbacks.SaveFinalCheckpoint
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args:
        {{dirpath: {out}/ckpt, every_n_train_steps: 5, save_top_k: -1, filename: "{{step}}"}}
"""
COLLECTOR = """collector:
  prefill_steps: 200
  stopping: {{mean_return: null, max_episodes: null, max_env_steps: 520}}
"""
AGENT_OVERRIDES = ("--data.capacity=1000", "--data.batch_size=32")
# The two averaged networks (an acting average of Act, a bootstrap target averaging Env) ride
# along in the same launches: each process updates its own copy from the synchronised network.
AVERAGED_NETWORKS = (
    "--model.init_args.act_ema_decay=0.9",
    "--model.init_args.bootstrap_target_decay=0.9",
    "--collector.rating.discount=0.99",
)


# The interrupted runs: the config's CSV logger and checkpoint folders (runs/NAME/version_N),
# where --ckpt_path last looks; the processes agree on a stop after every iteration, so that a
# signal at iteration 5 stops them after iteration 5 whatever the machine's pace.
RECORD_IN_RUN_FOLDER = """
trainer:
  callbacks:
    - class_path: tests.ddp_helpers.RecordRank
      init_args: {{dirpath: {out}}}
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{save_last: true, every_n_train_steps: 5}}
    - class_path: duet.callbacks.interruption.StopBetweenIterations
      init_args: {{agree_every_seconds: 0}}
"""


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory):
    """A 2-process GAN run of 10 iterations (the 300 fake images, none held out (gan.yaml's
    val_size 0), make 9 batches of 16 an epoch per process); the same run preempted by a SIGTERM
    that reaches process 0 alone (as ``kill PID`` does) in iteration 5; resumed from ``last``,
    it loses process 1 (SIGKILL) in iteration 8; resumed from ``last`` again, it ends.
    Returns the whole run's and the last resumed run's records, and each launch's stderr."""
    root = tmp_path_factory.mktemp("gan_ddp")
    data = write_mnist(root / "mnist")
    common = ("--data.batch_size=16", f"--data.data_dir={data}", "--trainer.max_steps=10")
    whole, _ = launch_ddp(root / "whole", "gan.yaml", RECORD_AND_SAVE, *common)
    chain = (root / "runs", "gan.yaml", RECORD_IN_RUN_FOLDER, *common)
    _, preempted = launch_ddp(
        *chain, *signalled_at(5, signal.SIGTERM, rank=0), status=143, cwd=root
    )
    last = "--ckpt_path=last"
    _, lost = launch_ddp(*chain, last, *signalled_at(8, signal.SIGKILL, rank=1), status=1, cwd=root)
    resumed, after = launch_ddp(*chain, last, cwd=root)
    return whole, resumed, {"preempted": preempted, "lost": lost, "resumed": after}


@pytest.fixture(scope="module")
def agent_runs(tmp_path_factory):
    """A 2-process agent run, with both averaged networks, that stops when both processes
    together collected 520 transitions (200 prefill each, then 2 an iteration: 60 iterations);
    the same run stopped by Ctrl-C (SIGINT to both processes, as a terminal sends it) in
    iteration 5 and resumed from ``last``; and the whole run's checkpoint at iteration 5."""
    root = tmp_path_factory.mktemp("agent_ddp")
    options = ("actenv_cartpole.yaml", RECORD_AND_SAVE + COLLECTOR, *AGENT_OVERRIDES)
    whole, _ = launch_ddp(root / "whole", *options, *AVERAGED_NETWORKS)
    options = (root / "runs", "actenv_cartpole.yaml", RECORD_IN_RUN_FOLDER + COLLECTOR)
    options = (*options, *AGENT_OVERRIDES, *AVERAGED_NETWORKS)
    _, stopped = launch_ddp(*options, *signalled_at(5, signal.SIGINT), status=130, cwd=root)
    assert stopped.count("stopped: training stopped by SIGINT after iteration 5.") == 1, stopped
    resumed, _ = launch_ddp(*options, "--ckpt_path=last", cwd=root)
    return whole, resumed, root / "whole" / "ranks" / "ckpt" / "step=5.ckpt"


def assert_same_environments(first: bytes, second: bytes) -> None:
    """Two pickled vector envs continue alike through 60 steps, episode ends and resets included
    (their bytes may differ in how pickle shares equal objects)."""
    first, second = pickle.loads(first), pickle.loads(second)
    actions = np.random.default_rng(0).integers(2, size=(60, first.num_envs))
    for action in actions:
        for ours, theirs in zip(first.step(action), second.step(action), strict=True):
            if not isinstance(ours, dict):
                np.testing.assert_array_equal(ours, theirs)


def assert_resumed_exactly(whole: list[dict], resumed: list[dict]) -> None:
    for rank in (0, 1):
        ours, theirs = whole[rank], resumed[rank]
        assert ours["global_step"] == theirs["global_step"], rank
        assert_same_tensors(ours["weights"], theirs["weights"], f"rank {rank} weights")
        for first, second in zip(ours["optimizers"], theirs["optimizers"], strict=True):
            assert_same_tensors(first, second, f"rank {rank} optimizer")
        at_end, resumed_end = dict(ours["at_end"]), dict(theirs["at_end"])
        if "collector" in at_end:
            at_end["collector"] = dict(at_end["collector"])
            resumed_end["collector"] = dict(resumed_end["collector"])
            envs = at_end["collector"].pop("envs"), resumed_end["collector"].pop("envs")
            assert_same_environments(*envs)
        assert_same_tensors(at_end, resumed_end, f"rank {rank} own state")
        # Every iteration after the resume drew, sampled and collected the same.
        assert theirs["draws"] == {k: v for k, v in ours["draws"].items() if k >= 5}, rank


def assert_ranks_differ(run: list[dict], names: tuple[str, ...]) -> None:
    rank0, rank1 = run[0]["draws"], run[1]["draws"]
    assert rank0.keys() == rank1.keys() and rank0
    for step in rank0:
        for name in names:
            assert rank0[step][name] != rank1[step][name], (step, name)


def test_gan_resumed_under_ddp_continues_every_process_exactly(gan_runs):
    whole, resumed, _ = gan_runs
    assert whole[0]["global_step"] == 10
    assert_resumed_exactly(whole, resumed)
    assert_same_tensors(whole[0]["weights"], whole[1]["weights"], "weights across ranks")
    # The data position: one shared permutation, the same count of batches on every process.
    assert whole[0]["at_end"]["sampler"] == {
        "seed": 0,
        "epoch": 1,
        "batches_done": 1,  # 10 = 9 + 1
        "num_replicas": 2,
    }


def test_gan_processes_draw_different_noise_and_images_before_and_after_a_resume(gan_runs):
    whole, resumed, _ = gan_runs
    assert_ranks_differ(whole, ("noise", "real"))  # iterations 0–9
    assert_ranks_differ(resumed, ("noise", "real"))  # iterations 5–9, after the resume


def test_a_signal_to_one_process_stops_both_after_the_same_iteration_and_saves_it(gan_runs):
    said = gan_runs[2]["preempted"]
    assert said.count("stopped: training stopped by SIGTERM after iteration 5.") == 1
    saved = "runs/gan/version_0/checkpoints/on_exception.ckpt"
    assert f"its state is saved in {saved}" in said
    assert f"Resuming from {saved} (saved after iteration 5)." in gan_runs[2]["lost"]


def test_a_lost_process_stops_the_other_with_one_line_naming_it_and_the_checkpoint(gan_runs):
    said = gan_runs[2]["lost"]
    lines = [line for line in said.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, said[-3000:]
    assert lines[0].startswith("error: process 1 (pid ")
    assert lines[0].endswith(
        "killed by SIGKILL) of this 2-process run was lost during iteration 8, so process 0 "
        "stopped too; resume with --ckpt_path last (the newest intact checkpoint: "
        "runs/gan/version_0/checkpoints/on_exception.ckpt)."
    )
    assert "Traceback" not in said and "Connection" not in said
    # ... and the resume after it continues from that checkpoint (compared exactly above).
    resumed = gan_runs[2]["resumed"]
    assert "Resuming from runs/gan/version_0/checkpoints/on_exception.ckpt" in resumed


def test_agent_resumed_under_ddp_continues_every_process_exactly(agent_runs):
    whole, resumed, _ = agent_runs
    # Both processes stop at the same iteration: the transition budget counts all of them.
    assert whole[0]["global_step"] == whole[1]["global_step"] == 60
    assert_resumed_exactly(whole, resumed)
    assert_same_tensors(whole[0]["weights"], whole[1]["weights"], "weights across ranks")
    averaged = {name.split(".")[0] for name in whole[0]["weights"]} & {"act_ema", "env_target"}
    assert averaged == {"act_ema", "env_target"}  # compared above, across ranks and the resume
    # Episode statistics are reduced over the processes: both log the same figures.
    metrics = [rank["metrics"] for rank in whole]
    assert metrics[0]["episode/count"] == metrics[1]["episode/count"] >= 2
    assert metrics[0]["episode/mean_return_100"] == metrics[1]["episode/mean_return_100"]


def test_agent_processes_collect_and_sample_differently_before_and_after_a_resume(agent_runs):
    whole, resumed, _ = agent_runs
    assert_ranks_differ(whole, ("obs", "a_loss"))
    assert_ranks_differ(resumed, ("obs", "a_loss"))
    for run in (whole, resumed):
        buffers = [rank["at_end"]["data"]["buffer"]["tensors"]["state"] for rank in run]
        assert not torch.equal(*buffers)


def test_a_two_process_checkpoint_resumes_on_one_process(agent_runs, tmp_path):
    """2 → 1: the one process continues process 0's state; process 1's is dropped, once said."""
    _, _, checkpoint = agent_runs
    saved = torch.load(checkpoint, weights_only=False)
    rating = SuccessRating(discount=0.99)  # AVERAGED_NETWORKS
    collector = GymCollector(prefill_steps=200, rating=rating, stopping=NO_STOP)
    recorder = RecordRank(str(tmp_path / "ranks"))
    trainer = tiny_trainer(tmp_path, max_steps=6, callbacks=[recorder, collector])
    data = ExperienceDataModule(capacity=1000, batch_size=32)
    agent = ActEnvAgent(act_ema_decay=0.9, bootstrap_target_decay=0.9)  # AVERAGED_NETWORKS
    L.seed_everything(0, verbose=False)
    with pytest.warns(UserWarning, match=r"state .* of 2 process\(es\), and this run has 1"):
        trainer.fit(agent, datamodule=data, ckpt_path=checkpoint)
    rank0_collector = saved["callbacks"]["GymCollector"]["processes"][0]
    restored = dict(recorder.at_start["collector"])
    assert_same_environments(restored.pop("envs"), rank0_collector.pop("envs"))
    assert_same_tensors(restored, rank0_collector, "collector")
    rank0_data = saved["ExperienceDataModule"]["processes"][0]
    assert_same_tensors(recorder.at_start["data"], rank0_data, "data")


def test_a_one_process_checkpoint_resumes_on_two_processes(tmp_path, monkeypatch):
    """1 → 2: process 0 continues the saved state; process 1 starts fresh, seeded as process 1
    (its own environments, an empty buffer that it prefills), and one warning says so."""
    monkeypatch.chdir(tmp_path)  # the run writes its config.yaml here
    extra = tmp_path / "one.yaml"
    extra.write_text((RECORD_AND_SAVE + COLLECTOR).format(out=tmp_path / "one"))
    config = str(REPO / "configs" / "actenv_cartpole.yaml")
    quiet = ("--trainer.logger=false", "--trainer.enable_progress_bar=false")
    options = ("--trainer.max_steps=5", "--trainer.enable_model_summary=false", *quiet)
    cli_main(["fit", "--config", config, "--config", str(extra), *options, *AGENT_OVERRIDES])
    checkpoint = tmp_path / "one" / "ckpt" / "step=5.ckpt"
    ranks, stderr = launch_ddp(
        tmp_path / "two",
        "actenv_cartpole.yaml",
        RECORD_AND_SAVE + COLLECTOR,
        *AGENT_OVERRIDES,
        f"--ckpt_path={checkpoint}",
        "--trainer.max_steps=8",
    )
    assert "of 1 process(es), and this run has 2" in stderr
    saved = torch.load(checkpoint, weights_only=False)
    saved_collector = dict(saved["callbacks"]["GymCollector"]["processes"][0])
    restored = dict(ranks[0]["at_start"]["collector"])
    assert_same_environments(restored.pop("envs"), saved_collector.pop("envs"))
    assert_same_tensors(restored, saved_collector, "process 0's collector")
    assert restored["env_steps"] == 205  # 200 prefill and 5 iterations
    fresh = ranks[1]["at_start"]
    assert fresh["collector"]["env_steps"] == 0 and fresh["data"]["buffer"]["size"] == 0
    assert ranks[1]["at_end"]["data"]["buffer"]["size"] == 200 + 3  # prefilled, then 3 steps
    assert_ranks_differ(ranks, ("obs", "a_loss"))
