"""How an ended episode rates its transitions: the success signal the Q heads learn."""

import numpy as np


def transition_values(rewards: np.ndarray, truncated: bool, discount: float | None) -> np.ndarray:
    """(T,) rewards of one episode -> (T,) value of each of its transitions.

    ``discount`` None (the seed): every transition gets the episode's return, so the first step
    of a long episode and the step that dropped the pole look alike.

    ``discount`` γ: the discounted return from each transition on, times (1 − γ), i.e. the mean
    discounted reward per step that followed it, v_t = (1 − γ)·r_t + γ·v_{t+1}. After a
    termination nothing follows (v_T = 0); an episode cut off by a time limit is assumed to go on
    earning its last reward (v_T = r_{T−1}), since it did not fail. For CartPole (reward 1 a step)
    v_t = 1 − γ^(steps to the fall), and 1 on episodes that reached the time limit.
    """
    if discount is None:
        return np.full(len(rewards), float(np.sum(rewards)))
    values = np.empty(len(rewards))
    value = float(rewards[-1]) if truncated else 0.0
    for t in range(len(rewards) - 1, -1, -1):
        value = (1.0 - discount) * float(rewards[t]) + discount * value
        values[t] = value
    return values
