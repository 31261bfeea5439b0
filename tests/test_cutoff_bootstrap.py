"""Rating episodes cut off by a time limit from Env's value of their last state
(``GymCollector(bootstrap_cutoff=True)``)."""

import numpy as np
import pytest
import torch

from duet.callbacks import GymCollector
from duet.callbacks.rates import transition_values
from duet.lightning_modules import ActEnvAgent
from tests.test_gym_collector import collector_with_buffer, episodes_in


def test_tail_values_replace_the_last_reward_after_a_cut_off_only():
    rewards = np.array([[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]])
    lengths, cut_off = np.array([3, 3]), np.array([True, False])
    values = transition_values(rewards, lengths, cut_off, 0.5, tail_values=np.array([4.0, 4.0]))
    # Cut off: v3 = 4, v2 = 0.5·2 + 0.5·4 = 3, v1 = 0 + 0.5·3 = 1.5, v0 = 0.5 + 0.5·1.5 = 1.25.
    assert values[0].tolist() == pytest.approx([1.25, 1.5, 3.0])
    # Terminated: nothing follows, whatever the tail value: v2 = 1, v1 = 0.5, v0 = 0.75.
    assert values[1].tolist() == pytest.approx([0.75, 0.5, 1.0])


def test_bootstrap_cutoff_needs_discount():
    with pytest.raises(ValueError, match=r"bootstrap_cutoff=true .* Set discount"):
        GymCollector(bootstrap_cutoff=True)


def test_best_action_rates_are_the_success_probability_of_envs_best_action():
    torch.manual_seed(0)
    agent = ActEnvAgent(state_size=4, action_size=3, hidden_size=16, batchnorm_training=True)
    for _ in range(3):  # running statistics unlike a fresh BatchNorm's
        agent.env(torch.randn(32, 4) * 3 + 1, torch.randint(3, (32,)))
    states = torch.randn(5, 4)
    agent.env.eval()
    expected = agent.env_q_per_action(states).max(dim=1).values.sigmoid()
    agent.env.train()
    torch.testing.assert_close(agent.best_action_rates(states), expected)
    assert agent.env.training  # left in training mode


def test_cut_off_training_episodes_are_rated_from_envs_value_of_their_last_state():
    # MountainCar-v0: −1 a step, random play never reaches the flag, so every episode is cut off
    # at 200 steps. Rates (value + 1) / 1 put values in [−1, 0] into [0, 1].
    discount = 0.9
    collector, buffer, agent = collector_with_buffer(
        env_id="MountainCar-v0",
        discount=discount,
        return_offset=-1.0,
        return_scale=1.0,
        bootstrap_cutoff=True,
    )
    torch.manual_seed(0)
    with torch.no_grad():
        agent.env.q_head.bias.fill_(1.0)  # an Env that expects some success, so the tails differ
    for _ in range(200):  # a prefill episode: rated as without bootstrapping (all values −1)
        collector.step(collector.rng.integers(3, size=1), training=False)
    for _ in range(200):  # a training episode
        collector.step(collector.rng.integers(3, size=1), training=True, agent=agent)
    (prefill, training) = episodes_in(buffer).values()
    assert len(prefill["rate"]) == len(training["rate"]) == 200
    assert prefill["truncated"][-1] and training["truncated"][-1]
    assert prefill["rate"].abs().max() == 0.0
    tail_rate = agent.best_action_rates(training["next_state"][-1:]).item()
    assert 0.05 < tail_rate < 0.95
    values = transition_values(
        -np.ones((1, 200)), np.array([200]), np.array([True]), discount, np.array([tail_rate - 1])
    )
    torch.testing.assert_close(
        training["rate"], torch.as_tensor(values[0] + 1, dtype=torch.float32)
    )
    assert training["rate"][-1] == pytest.approx(discount * tail_rate)
