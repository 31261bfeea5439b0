"""What one process's GymCollector carries in a checkpoint, so that a resumed run continues its
environments, exploration and episodes exactly (``GymCollector.state_dict`` gathers one such
state per process)."""

import pickle
from collections import deque

import gymnasium as gym
import torch

# What each environment is in the middle of, one entry per environment (and Exploration's).
PER_ENV = ("obs", "prev_action", "autoresetting")


def pickled(envs: gym.vector.VectorEnv) -> bytes:
    """The vector env as bytes. A SyncVectorEnv from ``gym.make_vec`` (every environment without
    a native vector version, e.g. Acrobot) keeps the local functions that built its copies; they
    cannot be pickled and are never called again, so they are left out (no functions)."""
    if not isinstance(envs, gym.vector.SyncVectorEnv):
        return pickle.dumps(envs)
    env_fns = envs.env_fns
    envs.env_fns = ()
    try:
        return pickle.dumps(envs)
    finally:
        envs.env_fns = env_fns


def local_state(collector) -> dict:
    """Everything this process needs to continue exactly: the environments themselves (their
    physics state, random generators and time limits, pickled), the exploration generator and
    step counter, the episodes in progress, the return window and the history."""
    per_env = {name: torch.as_tensor(getattr(collector, name)) for name in PER_ENV}
    return {
        "envs": pickled(collector.envs) if collector.envs is not None else None,
        "rng": collector.rng.bit_generator.state,
        "training_steps": collector.training_steps,
        "env_steps": collector.env_steps,
        "episodes": collector.episodes,
        "episodes_in_progress": collector.tracker.state_dict(),
        "recent_returns": list(collector.recent_returns),
        "history": collector.history.state_dict(),
        "latest_losses": {
            name: loss.detach().cpu() for name, loss in collector.latest_losses.items()
        },
        "per_env": per_env | collector.exploration.state_dict(),
    }


def load_local_state(collector, state: dict) -> None:
    """Puts ``local_state``'s result back, replacing the collector's environments."""
    if collector.envs is not None:
        collector.envs.close()
    collector.envs = pickle.loads(state["envs"])  # a checkpoint is trusted like code
    collector.rng.bit_generator.state = state["rng"]
    collector.training_steps, collector.episodes = state["training_steps"], state["episodes"]
    collector.env_steps = state["env_steps"]
    collector.tracker.load_state_dict(state["episodes_in_progress"])
    collector.recent_returns = deque(state["recent_returns"], maxlen=collector.window)
    collector.history.load_state_dict(state["history"])
    collector.latest_losses = dict(state["latest_losses"])
    for name in PER_ENV:
        setattr(collector, name, state["per_env"][name].numpy().copy())
    collector.exploration.load_state_dict(state["per_env"])
