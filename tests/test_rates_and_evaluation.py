"""Success ratings of transitions (the reference's and the discounted ones), the env-step budget,
the greedy rollout and evaluation."""

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from duet.callbacks import GreedyEvaluation, GymCollector, StoppingRules
from duet.callbacks.episodes import EpisodeTracker
from duet.callbacks.greedy_rollout import greedy_returns, play_greedy_episodes
from duet.callbacks.playing import play
from duet.datamodules import ExperienceDataModule, ReplayBuffer, SuccessRating
from duet.datamodules.rating import transition_values
from duet.lightning_modules import ActEnvAgent
from tests.conftest import tiny_trainer
from tests.test_gym_collector import NO_STOP, collector_with_buffer, episodes_in, fit_agent


def values_of(rewards, cut_off, discount):
    """transition_values of one episode."""
    rewards = np.asarray(rewards, dtype=float)[None]
    return transition_values(rewards, np.array([rewards.shape[1]]), np.array([cut_off]), discount)[
        0
    ]


def test_reference_values_are_the_episode_return_for_every_transition():
    assert values_of([1.0, 2.0, -0.5], False, None).tolist() == [2.5, 2.5, 2.5]


def test_discounted_values_by_hand():
    # v2 = 0.5·2 = 1; v1 = 0.5·0 + 0.5·1 = 0.5; v0 = 0.5·1 + 0.5·0.5 = 0.75.
    assert values_of([1.0, 0.0, 2.0], False, 0.5).tolist() == pytest.approx([0.75, 0.5, 1.0])
    # Cut off by a time limit: the last reward (2) is assumed to go on, v3 = 2.
    assert values_of([1.0, 0.0, 2.0], True, 0.5).tolist() == pytest.approx([1.0, 1.0, 2.0])


def test_cartpole_discounted_rate_is_one_minus_discount_to_the_steps_left():
    values = values_of(np.ones(7), False, 0.9)
    assert values.tolist() == pytest.approx([1 - 0.9 ** (7 - t) for t in range(7)])
    assert values_of(np.ones(7), True, 0.9) == pytest.approx(np.ones(7))


@pytest.mark.parametrize("discount", [None, 0.8])
def test_episodes_of_different_lengths_at_once_equal_one_at_a_time(discount):
    rng = np.random.default_rng(0)
    lengths, cut_off = np.array([3, 7, 1, 5]), np.array([False, True, True, False])
    rewards = rng.normal(size=(4, 7))
    together = transition_values(rewards, lengths, cut_off, discount)
    for row, (length, cut) in enumerate(zip(lengths, cut_off, strict=True)):
        alone = values_of(rewards[row, :length], cut, discount)
        np.testing.assert_allclose(together[row, :length], alone)
        assert not together[row, length:].any()  # the padding stays 0


@pytest.mark.parametrize("num_envs", [1, 4])
def test_collector_writes_discounted_rates_per_transition(num_envs):
    rating = SuccessRating(discount=0.95, return_scale=1.0)
    collector, buffer, _ = collector_with_buffer(
        num_envs=num_envs, prefill_steps=2_000, rating=rating
    )
    collector.prefill()
    episodes = episodes_in(buffer)
    assert len(episodes) > 20
    for episode in episodes.values():
        steps_left = torch.arange(len(episode["rate"]), 0, -1, dtype=torch.float64)
        expected = (1 - 0.95**steps_left).float()  # random CartPole play never hits 500 steps
        torch.testing.assert_close(episode["rate"], expected)


@pytest.mark.parametrize("discount", [None, 0.9])
def test_an_episode_longer_than_the_tracker_rows_is_rated_whole(discount):
    buffer = ReplayBuffer(capacity=2_000, state_size=1)
    scale = 600.0 if discount is None else 1.0
    rating = SuccessRating(return_scale=scale, return_offset=0.0, discount=discount)
    tracker = EpisodeTracker(num_envs=2, rating=rating)
    both, fell = np.arange(2), np.ones(2, dtype=bool)
    for step in range(600):  # copy 0: one episode of 600 steps; copy 1: episodes of 7 steps
        slots = buffer.add(
            episode=tracker.episode_id.copy(),
            prev_action=np.zeros(2, dtype=np.int64),
            state=np.full((2, 1), step, dtype=np.float32),
            action=np.zeros(2, dtype=np.int64),
            next_state=np.zeros((2, 1), dtype=np.float32),
            reward=np.ones(2),
            terminated=np.zeros(2, dtype=bool),
            truncated=np.zeros(2, dtype=bool),
        )
        tracker.record(both, slots, np.ones(2))
        if step % 7 == 6:
            tracker.finish(buffer, np.array([1]), fell, "test")
    long_episode = int(tracker.episode_id[0])
    returns, first_rates = tracker.finish(buffer, np.array([0]), fell, "test")
    assert returns == [600.0]
    assert tracker.episode_slots.shape[1] >= 600  # the rows grew past their first 256
    mine = buffer.tensors["episode"] == long_episode
    assert buffer.tensors["state"][mine, 0].tolist() == list(range(600))
    steps_left = np.arange(600, 0, -1)
    expected = np.ones(600) if discount is None else 1 - discount**steps_left
    np.testing.assert_allclose(buffer.tensors["rate"][mine].numpy(), expected, rtol=1e-6)
    assert first_rates == pytest.approx([expected[0]])


def test_max_env_steps_counts_prefill_and_stops_training(tmp_path):
    stopping = StoppingRules(mean_return=None, max_env_steps=80)
    collector = GymCollector(prefill_steps=50, stopping=stopping)
    trainer, _, datamodule = fit_agent(tmp_path, collector, max_steps=1_000)
    assert collector.env_steps == 80 == len(datamodule.buffer)
    assert trainer.global_step == 30  # one transition an iteration after the prefill


class LeaningPolicy:
    """A scripted greedy policy: push the cart the way the pole leans, its angle plus ``lead``
    times its angular velocity (0.1 balances CartPole to its 500-step limit; 0 drops the pole
    within some 50 steps, after a number of steps that depends on the start). Records the
    previous actions it is given and the actions it takes, call by call."""

    def __init__(self, lead: float) -> None:
        self.lead = lead
        self.calls: list[tuple[list[int], list[int]]] = []

    def greedy_actions(self, states, prev_actions):
        actions = (states[:, 2] + self.lead * states[:, 3] > 0).long()
        self.calls.append((prev_actions.tolist(), actions.tolist()))
        return actions


class OneEpisode(gym.Wrapper):
    """Counts the steps of its episode and refuses a step after the episode ended."""

    def reset(self, **kwargs):
        self.seed, self.steps, self.ended = kwargs.get("seed"), 0, False
        return self.env.reset(**kwargs)

    def step(self, action):
        assert not self.ended, "stepped after its episode ended"
        result = self.env.step(action)
        self.steps, self.ended = self.steps + 1, result[2] or result[3]
        return result


def test_greedy_episodes_played_together_end_as_each_played_alone():
    seeds = [7, 8, 9, 10]
    environments = [OneEpisode(gym.make("CartPole-v1")) for _ in seeds]
    together = play_greedy_episodes(LeaningPolicy(lead=0.0), environments, seeds)
    assert len(set(together.tolist())) > 1  # episodes of different lengths, in one batch
    # CartPole pays 1 a step: each return is the number of steps its own environment took.
    assert together.tolist() == [float(env.steps) for env in environments]
    assert [env.seed for env in environments] == seeds and all(e.ended for e in environments)
    for seed, both in zip(seeds, together.tolist(), strict=True):
        alone = play_greedy_episodes(LeaningPolicy(lead=0.0), [gym.make("CartPole-v1")], [seed])
        assert alone.tolist() == [both]
    # duet play: one environment, its episodes one after another, seeded as the evaluation.
    policy = LeaningPolicy(lead=0.0)
    assert play(policy, gym.make("CartPole-v1"), episodes=4, seed=7) == together.tolist()
    assert greedy_returns(policy, "CartPole-v1", episodes=4, seed=7).tolist() == together.tolist()


def test_a_greedy_episode_starts_from_previous_action_0_and_follows_its_own_actions():
    policy = LeaningPolicy(lead=0.1)
    (total,) = play_greedy_episodes(policy, [gym.make("CartPole-v1")], [3])
    assert total == 500.0  # the balancing policy reaches the time limit: truncation ends it
    given = [prev for (prev,), _ in policy.calls]
    taken = [action for _, (action,) in policy.calls]
    assert len(taken) == 500 and given == [0, *taken[:-1]]


def test_greedy_returns_make_the_environments_with_env_kwargs():
    # Sutton and Barto's reward: 0 a step, −1 when the pole falls.
    kwargs = {"sutton_barto_reward": True}
    returns = greedy_returns(LeaningPolicy(lead=0.0), "CartPole-v1", 3, seed=0, env_kwargs=kwargs)
    assert returns.tolist() == [-1.0, -1.0, -1.0]


def test_greedy_evaluation_logs_and_a_checkpoint_keeps_the_best_policy(tmp_path):
    evaluation = GreedyEvaluation(every_n_train_steps=20, episodes=3)
    collector = GymCollector(prefill_steps=100, stopping=StoppingRules(mean_return=None))
    best = ModelCheckpoint(
        tmp_path / "checkpoints",
        monitor="eval/greedy_mean_return",
        mode="max",
        every_n_train_steps=20,
        filename="best-{step}",
    )
    logger = CSVLogger(tmp_path, name="run", version=0)
    trainer = tiny_trainer(
        tmp_path,
        max_steps=60,
        callbacks=[evaluation, best, collector],
        logger=logger,
        enable_checkpointing=True,
    )
    trainer.fit(ActEnvAgent(), datamodule=ExperienceDataModule(capacity=500, batch_size=16))
    with open(tmp_path / "run" / "version_0" / "metrics.csv") as file:
        rows = [row for row in csv.DictReader(file) if row["eval/env_steps"]]
    # After iterations 20, 40, 60: on the rows of those iterations' losses (Lightning: k − 1).
    assert [int(row["step"]) for row in rows] == [19, 39, 59]
    assert [float(row["eval/env_steps"]) for row in rows] == [120, 140, 160]
    means = [float(row["eval/greedy_mean_return"]) for row in rows]
    assert all(1 <= float(row["eval/greedy_min_return"]) <= 500 for row in rows)
    # The kept checkpoint is the first evaluation with the highest mean.
    assert best.best_model_score == max(means)
    assert best.best_model_path.endswith(f"best-step={20 * (means.index(max(means)) + 1)}.ckpt")


def test_greedy_evaluation_needs_a_collector(tmp_path):
    with pytest.raises(RuntimeError, match=r"add a collector: section to the config"):
        GreedyEvaluation.collector_of(type("Trainer", (), {"callbacks": []})())


def test_greedy_evaluation_records_videos_for_the_run_folder_and_wandb(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import WandbLogger

    from duet.callbacks.episode_video import greedy_episode_frames
    from tests.wandb_records import run_contents

    monkeypatch.setenv("WANDB_SILENT", "true")
    evaluation = GreedyEvaluation(every_n_train_steps=2, episodes=2, video_episodes=2)
    collector = GymCollector(prefill_steps=50, stopping=StoppingRules(mean_return=None))
    csv_logger = CSVLogger(tmp_path, name="run", version=0)
    wandb_logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="videos")
    loggers = [csv_logger, wandb_logger]
    trainer = tiny_trainer(tmp_path, max_steps=2, callbacks=[evaluation, collector], logger=loggers)
    torch.manual_seed(0)
    agent = ActEnvAgent()
    trainer.fit(agent, datamodule=ExperienceDataModule(capacity=200, batch_size=16))
    wandb_logger.experiment.finish()
    videos = tmp_path / "run" / "version_0" / "videos"
    assert sorted(p.name for p in videos.iterdir()) == [
        "iter_000002-episode-0.mp4",
        "iter_000002-episode-1.mp4",
    ]
    # The recorded episodes are those of the evaluation seeds, in the trained policy.
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    frames, fps = greedy_episode_frames(agent, env, seed=10_000)
    returns = greedy_returns(agent, "CartPole-v1", episodes=1, seed=10_000)
    assert len(frames) == returns[0] + 1 and fps == 50  # the reset frame, then one per step
    (run_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    _, history = run_contents(run_file)
    (row,) = [row for row in history if "eval/video/_type" in row]
    assert (row["eval/video/_type"], row["eval/video/count"]) == ("videos", 2)
    assert row["trainer/global_step"] == 1  # on the row of iteration 2's losses
    uploaded = run_file.parent / "files" / "media" / "videos" / "eval"
    assert len(list(uploaded.glob("*.mp4"))) == 2


def test_videos_without_moviepy_are_refused_up_front(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "moviepy" else real(name)
    )
    with pytest.raises(
        ModuleNotFoundError, match=r"video_episodes > 0 records videos with moviepy"
    ):
        GreedyEvaluation(video_episodes=1)


@pytest.mark.parametrize(("stop_at", "steps"), [(1.0, 5), (501.0, 15)])
def test_greedy_evaluation_stops_training_once_it_reaches_stop_at(stop_at, steps, tmp_path):
    # Every CartPole episode returns at least 1; none can return 501.
    evaluation = GreedyEvaluation(every_n_train_steps=5, episodes=2, stop_at=stop_at)
    collector = GymCollector(prefill_steps=50, stopping=NO_STOP)
    trainer = tiny_trainer(tmp_path, max_steps=15, callbacks=[evaluation, collector])
    trainer.fit(ActEnvAgent(), datamodule=ExperienceDataModule(capacity=200, batch_size=16))
    assert trainer.global_step == steps
