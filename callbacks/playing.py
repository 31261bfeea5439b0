"""An Act/Env checkpoint played greedily, as ``duet play`` and ``duet sweep`` play it."""

from pathlib import Path

import gymnasium as gym

from duet.callbacks.episode_video import check_video_support
from duet.callbacks.greedy_rollout import play_greedy_episodes
from duet.lightning_modules import ActEnvAgent
from duet.lightning_modules.checkpoints import load_duet_module


def load_agent(checkpoint_path: Path) -> tuple[ActEnvAgent, dict]:
    """The agent in eval mode on the CPU, and the checkpoint it came from."""
    return load_duet_module(checkpoint_path, ActEnvAgent, "an ActEnvAgent")


def trained_environment(checkpoint: dict) -> tuple[str | None, dict]:
    """(environment id, env_kwargs) of the checkpoint's GymCollector; (None, {}) without one."""
    collectors = [s for key, s in checkpoint.get("callbacks", {}).items() if "GymCollector" in key]
    if not collectors:
        return None, {}
    return collectors[0]["env_id"], collectors[0].get("env_kwargs", {})


def play(agent: ActEnvAgent, env: gym.Env, episodes: int, seed: int) -> list[float]:
    """Total reward of each of ``episodes`` greedy episodes of ``env``, one after another (as a
    video recorder wrapping it expects), episode i reset with ``seed + i``."""
    return [float(play_greedy_episodes(agent, [env], [seed + i])[0]) for i in range(episodes)]


def make_env(env_id: str, video_dir: Path | None, env_kwargs: dict | None = None) -> gym.Env:
    """``env_id`` made with ``env_kwargs``; recording every episode into ``video_dir``, if given."""
    if video_dir is None:
        return gym.make(env_id, **env_kwargs or {})
    check_video_support("--video-dir", "leave --video-dir out")
    env = gym.make(env_id, render_mode="rgb_array", **env_kwargs or {})
    return gym.wrappers.RecordVideo(env, str(video_dir), episode_trigger=lambda _: True)
