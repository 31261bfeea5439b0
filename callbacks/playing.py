"""An Act/Env checkpoint played greedily, as ``duet play`` and ``duet sweep`` play it."""

from pathlib import Path

import gymnasium as gym

from duet.callbacks.episode_video import check_video_support
from duet.callbacks.episodes import greedy_episode
from duet.lightning_modules import ActEnvAgent
from duet.lightning_modules.checkpoints import load_duet_module


def load_agent(checkpoint_path: Path) -> tuple[ActEnvAgent, dict]:
    """The agent in eval mode on the CPU, and the checkpoint it came from."""
    return load_duet_module(checkpoint_path, ActEnvAgent, "an ActEnvAgent")


def trained_env_id(checkpoint: dict) -> str | None:
    """The environment id the checkpoint's GymCollector trained on, if it had one."""
    collectors = [s for key, s in checkpoint.get("callbacks", {}).items() if "GymCollector" in key]
    return collectors[0]["env_id"] if collectors else None


def play(agent: ActEnvAgent, env: gym.Env, episodes: int, seed: int) -> list[float]:
    """Total reward of each greedy episode; the previous action is 0 at every episode start."""
    return [greedy_episode(agent, env, seed + episode) for episode in range(episodes)]


def make_env(env_id: str, video_dir: Path | None) -> gym.Env:
    if video_dir is None:
        return gym.make(env_id)
    check_video_support("--video-dir", "leave --video-dir out")
    env = gym.make(env_id, render_mode="rgb_array")
    return gym.wrappers.RecordVideo(env, str(video_dir), episode_trigger=lambda _: True)
