"""The Gymnasium collector: prefill, exploration, episode bookkeeping, vector envs, stopping."""

import math
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

from duet.callbacks import ExplorationSchedule, GymCollector, StoppingRules
from duet.callbacks.exploration import Exploration
from duet.datamodules import ExperienceDataModule, SuccessRating
from duet.lightning_modules import ActEnvAgent
from tests.conftest import tiny_trainer

ACROBOT = {"rating": SuccessRating(return_offset=-500.0)}  # its returns lie in [−500, 0]
HOLD_5 = ExplorationSchedule(hold=5)
NO_STOP = StoppingRules(mean_return=None, max_episodes=None)  # only max_steps ends a test run


def collector_with_buffer(capacity=20_000, **kwargs):
    collector = GymCollector(**{"prefill_steps": 0, **kwargs})
    datamodule = ExperienceDataModule(capacity=capacity, batch_size=10)
    agent = ActEnvAgent()
    trainer = SimpleNamespace(
        datamodule=datamodule, global_rank=0, loggers=[], log_dir=None, default_root_dir="."
    )
    collector.setup(trainer, agent, "fit")
    return collector, datamodule.buffer, agent


def episodes_in(buffer):
    """Per rated episode: its transitions in the order they were written (no wrap-around)."""
    t = {name: tensor[: len(buffer)] for name, tensor in buffer.tensors.items()}
    episodes = {}
    for episode in t["episode"][t["rate"] >= 0].unique().tolist():
        slots = (t["episode"] == episode).nonzero().squeeze(1)
        episodes[episode] = {name: values[slots] for name, values in t.items()}
    return episodes


@pytest.mark.parametrize("num_envs", [1, 4])
def test_prefill_collects_the_requested_number_of_transitions(num_envs):
    collector, buffer, _ = collector_with_buffer(num_envs=num_envs, prefill_steps=1_000)
    collector.prefill()
    assert 1_000 <= len(buffer) < 1_000 + num_envs
    if num_envs == 1:
        assert len(buffer) == 1_000
    assert collector.episodes == 0 and collector.training_steps == 0  # prefill is not training


@pytest.mark.parametrize("num_envs", [1, 4])
def test_episode_bookkeeping_on_cartpole(num_envs):
    collector, buffer, _ = collector_with_buffer(num_envs=num_envs, prefill_steps=3_000)
    collector.prefill()
    episodes = episodes_in(buffer)
    assert len(episodes) > 20
    for episode in episodes.values():
        length = len(episode["reward"])
        # CartPole pays 1 per step: the rate is the return over 500, the return the length.
        assert torch.allclose(episode["rate"], torch.tensor(length / 500))
        assert episode["terminated"][-1] or episode["truncated"][-1]
        assert not (episode["terminated"][:-1] | episode["truncated"][:-1]).any()
        # States chain from one transition to the next: no autoreset step was stored.
        assert torch.equal(episode["state"][1:], episode["next_state"][:-1])
        # The previous action is 0 at the start of an episode, then the action just taken.
        assert episode["prev_action"][0] == 0
        assert torch.equal(episode["prev_action"][1:], episode["action"][:-1])


def test_vector_env_uses_the_native_cartpole_implementation():
    collector, _, _ = collector_with_buffer(num_envs=8)
    assert type(collector.envs).__name__ == "CartPoleVectorEnv"
    assert collector.obs.shape == (8, 4)


def test_exploration_schedule_follows_the_seed_formula():
    collector = GymCollector(prefill_steps=0)
    assert collector.explore_probability() == pytest.approx(1.0)
    collector.training_steps = 10_000
    assert collector.explore_probability() == pytest.approx(0.01 + 0.99 * math.exp(-1.0))
    collector.training_steps = 10**7
    assert collector.explore_probability() == pytest.approx(0.01)


def test_greedy_actions_follow_the_agent_when_not_exploring():
    never = ExplorationSchedule(start=0.0, stop=0.0)
    collector, _, agent = collector_with_buffer(num_envs=8, exploration=never)
    actions = collector.choose_actions(agent)
    expected = agent.greedy_actions(
        torch.as_tensor(collector.obs), torch.as_tensor(collector.prev_action)
    )
    assert np.array_equal(actions, expected.numpy())


def test_random_actions_when_always_exploring():
    collector, _, agent = collector_with_buffer(num_envs=64)
    agent.greedy_actions = None  # must not be called when every env explores
    actions = collector.choose_actions(agent)
    assert set(actions.tolist()) == {0, 1}


def fit_agent(tmp_path, collector, max_steps=30, **trainer_kwargs):
    agent = ActEnvAgent()
    datamodule = ExperienceDataModule(capacity=5_000, batch_size=32, batches_per_epoch=50)
    trainer_kwargs.setdefault("callbacks", [collector])
    trainer = tiny_trainer(tmp_path, max_steps=max_steps, **trainer_kwargs)
    trainer.fit(agent, datamodule=datamodule)
    return trainer, agent, datamodule


def test_each_iteration_samples_after_collecting(tmp_path, monkeypatch):
    collector = GymCollector(prefill_steps=200)
    events = []
    original_step, original_sample = collector.step, None

    def step(actions, training):
        stored = original_step(actions, training)
        if training:
            events.append(("collect", len(collector.buffer)))
        return stored

    monkeypatch.setattr(collector, "step", step)
    from duet.datamodules.replay import ReplayBuffer

    original_sample = ReplayBuffer.sample

    def sample(self, batch_size, generator=None):
        events.append(("sample", len(self)))
        return original_sample(self, batch_size, generator)

    monkeypatch.setattr(ReplayBuffer, "sample", sample)
    fit_agent(tmp_path, collector, max_steps=5)
    assert [kind for kind, _ in events] == ["collect", "sample"] * 5
    for (_, collected), (_, sampled) in zip(events[::2], events[1::2], strict=True):
        assert sampled == collected  # the batch is drawn from the buffer including this step


def test_training_stops_at_the_mean_return_threshold(tmp_path):
    stopping = StoppingRules(mean_return=1.0, window=3, max_episodes=None)
    collector = GymCollector(prefill_steps=200, stopping=stopping)
    trainer, _, _ = fit_agent(tmp_path, collector, max_steps=10_000)
    assert collector.episodes == 3  # every return is >= 1: stops once the window is full
    assert trainer.global_step < 10_000


def test_training_stops_after_max_episodes_and_writes_the_plot(tmp_path):
    stopping = StoppingRules(mean_return=None, max_episodes=4)
    collector = GymCollector(prefill_steps=200, stopping=stopping)
    fit_agent(tmp_path, collector, max_steps=10_000)
    assert collector.episodes == 4
    assert len(collector.history) == 4 and set(collector.history.losses) == {
        "train/a_loss",
        "train/e_loss",
        "train/a_loss2",
        "train/e_loss2",
    }
    assert (tmp_path / "episodes.png").read_bytes()[:4] == b"\x89PNG"


def test_another_environment_needs_only_its_env_id_and_rate_range(tmp_path):
    # Acrobot: 6 observations, 3 actions, returns in [-500, 0].
    collector = GymCollector("Acrobot-v1", prefill_steps=600, **ACROBOT)
    _, agent, datamodule = fit_agent(tmp_path, collector, max_steps=5)
    assert (agent.hparams.state_size, agent.hparams.action_size) == (6, 3)
    assert datamodule.buffer.num_rated() >= 500
    rates = datamodule.buffer.tensors["rate"][: len(datamodule.buffer)]
    assert rates[rates >= 0].max() <= 1.0


def test_rates_outside_the_unit_interval_stop_before_training(tmp_path):
    # Acrobot's reward threshold, −100, rates 0; the −500 of an episode that fails rates −4.
    rating = SuccessRating(return_offset=-100, return_scale=100)
    collector = GymCollector("Acrobot-v1", prefill_steps=600, rating=rating)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        fit_agent(tmp_path, collector, max_steps=5)


def test_discounted_rates_outside_the_unit_interval_name_the_options_and_save_nothing(tmp_path):
    from duet.callbacks import CheckpointOnException

    # MountainCar: −1 a step, so with a discount every value is −1 to 0; the solved CartPole
    # config's range [0, 1] does not hold it. Its episodes end after 200 steps of the prefill.
    rating = SuccessRating(discount=0.995, return_scale=1.0)
    collector = GymCollector("MountainCar-v0", prefill_steps=250, rating=rating)
    expected = (
        r"^GymCollector rating\.return_offset=0, rating\.return_scale=1: an episode of "
        r"MountainCar-v0 has a "
        r"transition of value -1 \(the discounted return .*\), which rates -1, outside \[0, 1\]; "
        r"set return_offset to the lowest value"
    )
    with pytest.raises(ValueError, match=expected):
        fit_agent(tmp_path, collector, max_steps=5, callbacks=[CheckpointOnException(), collector])
    assert not list(tmp_path.rglob("*.ckpt"))


def test_a_step_budget_that_the_prefill_would_use_up_is_refused():
    message = r"^GymCollector stopping\.max_env_steps=2000 is not above prefill_steps=5000"
    with pytest.raises(ValueError, match=message):
        stopping = StoppingRules(max_env_steps=2000)
        GymCollector("Acrobot-v1", prefill_steps=5000, stopping=stopping, **ACROBOT)


def test_env_kwargs_reach_the_environments_and_a_wrong_one_is_named():
    collector, _, _ = collector_with_buffer(
        env_id="CartPole-v1", env_kwargs={"sutton_barto_reward": True}
    )
    _, rewards, *_ = collector.envs.step(np.array([0]))
    assert rewards.tolist() == [0.0]  # Sutton and Barto's reward: 0 a step (the default: 1)
    with pytest.raises(
        ValueError, match=r"^GymCollector env_kwargs=\{'pole_lenght': 1\} for CartPole"
    ):
        GymCollector(env_kwargs={"pole_lenght": 1})


def test_a_resume_with_other_env_kwargs_is_refused():
    saved = {"env_id": "CartPole-v1", "env_kwargs": {"sutton_barto_reward": True}, "processes": []}
    with pytest.raises(ValueError, match=r"with env_kwargs \{'sutton_barto_reward': True\}, this"):
        GymCollector(prefill_steps=0).load_state_dict(saved)


def test_unknown_environment_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="Unknown Gymnasium environment 'CartPole-v9'"):
        GymCollector("CartPole-v9")


def test_continuous_actions_are_refused():
    with pytest.raises(ValueError, match="needs a Discrete action space"):
        GymCollector("Pendulum-v1")


def test_the_collector_refuses_a_model_that_is_not_a_collecting_agent():
    from duet.lightning_modules.collecting_agent import CollectingAgent, GreedyPolicy

    assert isinstance(ActEnvAgent(), CollectingAgent) and isinstance(ActEnvAgent(), GreedyPolicy)

    class ActsOnly(L.LightningModule):
        def greedy_actions(self, states, prev_actions):
            return prev_actions

    data = ExperienceDataModule(capacity=100, batch_size=10)
    expected = (
        r"^GymCollector trains a CollectingAgent \(duet\.lightning_modules\.collecting_agent\), "
        r"but model ActsOnly lacks build, use_success_rating: use"
    )
    with pytest.raises(TypeError, match=expected):
        GymCollector(prefill_steps=0).setup(SimpleNamespace(datamodule=data), ActsOnly(), "fit")


def test_collector_needs_the_experience_datamodule():
    with pytest.raises(TypeError, match="ExperienceDataModule"):
        GymCollector().setup(SimpleNamespace(datamodule=L.LightningDataModule()), None, "fit")


def test_the_collector_steps_no_environments_before_its_setup():
    with pytest.raises(RuntimeError, match="setup makes them"):
        GymCollector(prefill_steps=0).step(np.zeros(1, dtype=np.int64), training=False)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_a_sync_vector_env_survives_a_checkpoint_round_trip(num_envs):
    """Acrobot has no native vector env: make_vec builds a SyncVectorEnv from local functions."""
    collector, _, _ = collector_with_buffer(env_id="Acrobot-v1", num_envs=num_envs, **ACROBOT)
    assert type(collector.envs).__name__ == "SyncVectorEnv"
    for _ in range(5):
        collector.step(collector.rng.integers(3, size=num_envs), training=False)
    state = torch.load(_saved(collector.state_dict()), weights_only=False)
    resumed, _, _ = collector_with_buffer(env_id="Acrobot-v1", num_envs=num_envs, **ACROBOT)
    resumed.load_state_dict(state)
    actions = np.array([2, 0, 1][:num_envs])
    expected, *_ = collector.envs.step(actions)
    observed, *_ = resumed.envs.step(actions)
    np.testing.assert_array_equal(observed, expected)
    assert collector.envs.env_fns is not None  # the live env keeps its functions


def _saved(state):
    import io

    file = io.BytesIO()
    torch.save(state, file)
    file.seek(0)
    return file


def test_a_registered_environment_missing_a_package_names_the_install(monkeypatch):
    import gymnasium as gym

    def needs_box2d(env_id, **kwargs):
        raise gym.error.DependencyNotInstalled(
            'Box2D is not installed: pip install "gymnasium[box2d]"'
        )

    monkeypatch.setattr(gym, "make", needs_box2d)
    with pytest.raises(ValueError, match=r"LunarLander-v3 is registered, but .*gymnasium\[box2d\]"):
        GymCollector(env_id="LunarLander-v3")


def test_a_checkpoint_from_before_per_process_states_still_loads():
    """Earlier checkpoints held one process's state at the top level, not under "processes"."""
    collector, _, _ = collector_with_buffer()
    for _ in range(7):
        collector.step(collector.rng.integers(2, size=1), training=True)
    legacy = {"env_id": collector.env_id, **collector.local_state_dict()}
    resumed, _, _ = collector_with_buffer()
    resumed.load_state_dict(torch.load(_saved(legacy), weights_only=False))
    assert resumed.env_steps == collector.env_steps == 7
    np.testing.assert_array_equal(resumed.obs, collector.obs)


def test_a_held_random_action_repeats_for_explore_hold_steps():
    exploration = Exploration(num_envs=2, schedule=ExplorationSchedule(hold=3))
    steps = [  # (which envs draw exploration, their random actions) -> (explore, actions) taken
        (([1, 0], [1, 0]), ([1, 0], 1)),  # env 0 starts holding 1
        (([0, 1], [0, 2]), ([1, 1], [1, 2])),  # env 0 holds; env 1 starts holding 2
        (([0, 0], [0, 0]), ([1, 1], [1, 2])),  # env 0's third and last step of 1
        (([0, 0], [0, 0]), ([0, 1], 2)),  # env 0 acts greedily again; env 1's last step
        (([0, 0], [0, 0]), ([0, 0], None)),
    ]
    for (draws, random_actions), (explore, actions) in steps:
        taken, chosen = exploration.held(np.array(draws, dtype=bool), np.array(random_actions))
        assert taken.tolist() == [bool(e) for e in explore]
        if isinstance(actions, list):
            assert chosen.tolist() == actions
        elif actions is not None:
            assert chosen[taken.argmax()] == actions


@pytest.mark.parametrize("num_envs", [1, 3])  # 3: an env's reset step takes no action
def test_held_random_actions_restart_with_each_episode_in_the_prefill(num_envs):
    collector, buffer, _ = collector_with_buffer(
        prefill_steps=300, exploration=ExplorationSchedule(hold=4), num_envs=num_envs
    )
    collector.prefill()
    episodes = episodes_in(buffer)
    assert len(episodes) >= 5
    for episode in episodes.values():
        actions = episode["action"].tolist()
        runs = [actions[i : i + 4] for i in range(0, len(actions), 4)]
        assert all(len(set(run)) == 1 for run in runs)  # from the episode's first step on
    assert any(len(set(e["action"].tolist())) > 1 for e in episodes.values())


def test_a_hold_in_progress_survives_a_checkpoint_round_trip():
    def actions_taken(collector, steps):
        taken = []
        for _ in range(steps):
            taken.append(collector.choose_actions(agent).tolist())
            collector.step(np.array(taken[-1]), training=True)
        return taken

    collector, _, agent = collector_with_buffer(num_envs=3, exploration=HOLD_5)
    actions_taken(collector, 3)
    assert collector.exploration.hold_left.any()
    state = torch.load(_saved(collector.state_dict()), weights_only=False)
    resumed, _, _ = collector_with_buffer(num_envs=3, exploration=HOLD_5)
    resumed.load_state_dict(state)
    assert actions_taken(resumed, 12) == actions_taken(collector, 12)


def test_a_checkpoint_from_before_explore_hold_resumes_with_no_hold():
    collector, _, agent = collector_with_buffer(num_envs=3, exploration=HOLD_5)
    for _ in range(3):
        collector.step(collector.choose_actions(agent), training=True)
    state = collector.state_dict()
    for process in state["processes"]:
        for name in Exploration.PER_ENV:
            del process["per_env"][name]
    resumed, _, _ = collector_with_buffer(num_envs=3, exploration=HOLD_5)
    resumed.exploration.hold_left[:] = 2
    resumed.load_state_dict(torch.load(_saved(state), weights_only=False))
    np.testing.assert_array_equal(resumed.obs, collector.obs)
    assert not resumed.exploration.hold_left.any()
