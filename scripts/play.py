"""Play the greedy policy of an Act/Env checkpoint and print each episode's total reward.

    duet play CHECKPOINT [--episodes 10] [--seed S] [--env-id ID] [--video-dir DIR]

The environment is the one the checkpoint was trained on unless ``--env-id`` says otherwise.
``--video-dir`` records every episode with gymnasium's RecordVideo; it needs the rendering
extra: ``pip install "duet[render]"``.
"""

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

from duet.callbacks.episode_video import check_video_support
from duet.callbacks.episodes import greedy_episode
from duet.lightning_modules import ActEnvAgent
from duet.lightning_modules.checkpoints import CheckpointError, load_duet_module
from duet.scripts.errors import run_with_clear_errors


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


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    parser.add_argument("--env-id", help="environment to play (default: the checkpoint's)")
    parser.add_argument("--video-dir", type=Path, help="record videos of every episode here")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    try:
        agent, checkpoint = load_agent(args.checkpoint)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    env_id = args.env_id or trained_env_id(checkpoint) or "CartPole-v1"
    env = make_env(env_id, args.video_dir)
    totals = play(agent, env, args.episodes, args.seed)
    env.close()
    for episode, total in enumerate(totals, start=1):
        print(f"episode {episode}: total reward {total:g}")
    print(
        f"mean {np.mean(totals):.1f} ± {np.std(totals):.1f} over {len(totals)} episodes on {env_id}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_with_clear_errors(main))
