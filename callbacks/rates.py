"""How ended episodes rate their transitions: the success signal the Q heads learn."""

import numpy as np


def transition_values(
    rewards: np.ndarray, lengths: np.ndarray, cut_off: np.ndarray, discount: float | None
) -> np.ndarray:
    """Rewards (E, T) of E ended episodes, padded after each one's length (E,) -> (E, T) value of
    each transition (0 in the padding). ``cut_off`` (E,) marks episodes ended by a time limit.

    ``discount`` None (the reference): every transition gets its episode's return, so the first step
    of a long episode and the step that dropped the pole look alike.

    ``discount`` γ: the discounted return from each transition on, times (1 − γ), i.e. the mean
    discounted reward per step that followed it, v_t = (1 − γ)·r_t + γ·v_{t+1}. After a
    termination nothing follows (v_T = 0); an episode cut off by a time limit is assumed to go on
    earning its last reward (v_T = r_{T−1}), since it did not fail. For CartPole (reward 1 a step)
    v_t = 1 − γ^(steps to the fall), and 1 on episodes that reached the time limit.
    """
    inside = np.arange(rewards.shape[1]) < lengths[:, None]  # (E, T)
    rewards = np.where(inside, rewards, 0.0)
    if discount is None:
        return np.where(inside, rewards.sum(axis=1, keepdims=True), 0.0)
    last_reward = rewards[np.arange(len(lengths)), lengths - 1]
    value = np.where(cut_off, last_reward, 0.0)  # (E,) what follows each episode's end
    values = np.zeros(rewards.shape)
    for t in range(rewards.shape[1] - 1, -1, -1):  # one vector operation per time step
        value = np.where(inside[:, t], (1.0 - discount) * rewards[:, t] + discount * value, value)
        values[:, t] = value
    return np.where(inside, values, 0.0)
