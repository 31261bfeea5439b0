"""Greedy episodes of an agent: the one rollout that ``duet play``, the videos and the greedy
evaluation all play."""

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch

from duet.lightning_modules.collecting_agent import GreedyPolicy


def play_greedy_episodes(
    agent: GreedyPolicy, environments: Sequence[gym.Env], seeds: Sequence[int]
) -> np.ndarray:
    """(E,) total reward of one greedy episode in each of E environments, reset with its seed.

    The episodes run in lock-step, so the agent is asked for all running episodes' actions at
    once. The previous action is 0 at the start, as in training; an environment whose episode
    ended is not stepped again (a recording wrapper sees exactly one episode).
    """
    observations = [env.reset(seed=seed)[0] for env, seed in zip(environments, seeds, strict=True)]
    prev_actions = np.zeros(len(environments), dtype=np.int64)
    returns = np.zeros(len(environments))
    running = list(range(len(environments)))
    while running:
        states = np.stack([np.asarray(observations[i], dtype=np.float32) for i in running])
        previous = torch.as_tensor(prev_actions[running])
        actions = agent.greedy_actions(torch.as_tensor(states), previous).cpu().tolist()
        still_running = []
        for i, action in zip(running, actions, strict=True):
            observations[i], reward, terminated, truncated, _ = environments[i].step(action)
            returns[i] += float(reward)
            prev_actions[i] = action
            if not (terminated or truncated):
                still_running.append(i)
        running = still_running
    return returns


def greedy_returns(
    agent: GreedyPolicy, env_id: str, episodes: int, seed: int, env_kwargs: dict | None = None
) -> np.ndarray:
    """(episodes,) returns of one greedy episode in each of ``episodes`` copies of ``env_id``
    made with ``env_kwargs``; copy i is reset with ``seed + i``."""
    environments = [gym.make(env_id, **env_kwargs or {}) for _ in range(episodes)]
    try:
        return play_greedy_episodes(agent, environments, [seed + i for i in range(episodes)])
    finally:
        for env in environments:
            env.close()
