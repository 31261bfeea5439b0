"""Videos of greedy episodes: recorded to MP4 files in the run folder, and given to W&B.

Not to TensorBoard: torch's ``add_video`` imports ``moviepy.editor``, which moviepy 2 removed,
and then prints a line and writes nothing. The run folder's files serve TensorBoard users.
"""

import importlib.util
from pathlib import Path

import gymnasium as gym
import lightning as L
from gymnasium.core import RenderFrame
from lightning.pytorch.loggers import WandbLogger

from duet.callbacks.direct_logging import logger_step
from duet.callbacks.greedy_rollout import play_greedy_episodes

RENDER_EXTRA = 'pip install "duet[render]" (gymnasium[classic-control] and moviepy)'


def check_video_support(asked: str, instead: str) -> None:
    """Refuse video recording up front when moviepy, which writes the MP4 files, is missing:
    one line naming the option that ``asked`` for videos and the ``instead`` that needs none."""
    if importlib.util.find_spec("moviepy") is None:
        raise ModuleNotFoundError(
            f"{asked} records videos with moviepy, which is not installed: {RENDER_EXTRA}; "
            f"or {instead}."
        )


def greedy_episode_frames(agent, env: gym.Env, seed: int) -> tuple[list[RenderFrame], int]:
    """(H, W, 3) uint8 frames of one greedy episode of ``env`` (made with render_mode
    "rgb_array", whose RenderFrames are arrays) reset with ``seed`` (the reset frame, then one a
    step), and the frame rate."""
    recording = gym.wrappers.RenderCollection(env)
    play_greedy_episodes(agent, [recording], [seed])
    frames = recording.render()
    fps = int(recording.metadata.get("render_fps") or 30)
    return frames, fps


def record_and_log(
    trainer: L.Trainer, agent, env: gym.Env, episodes: int, seed: int, key: str, folder: Path
) -> list[Path]:
    """Record ``episodes`` greedy episodes of ``env`` (made with render_mode "rgb_array"; closed
    here) with seeds ``seed`` + i into ``folder`` and log them under ``key`` on the row of the
    current iteration; the files written. Called on process 0 alone."""
    # Imports moviepy, an optional extra (RENDER_EXTRA): only when a video is asked for.
    from gymnasium.utils.save_video import save_video

    prefix = f"iter_{trainer.global_step:06d}"
    paths = []
    for index in range(episodes):
        frames, fps = greedy_episode_frames(agent, env, seed + index)
        save_video(
            frames,
            str(folder),
            episode_trigger=lambda _: True,
            name_prefix=prefix,
            episode_index=index,
            fps=fps,
        )
        paths.append(folder / f"{prefix}-episode-{index}.mp4")
    env.close()
    step = logger_step(trainer.global_step)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_video(key, [str(path) for path in paths], step=step)
    return paths
