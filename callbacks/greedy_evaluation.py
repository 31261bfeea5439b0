"""Plays the agent's greedy policy every so many training iterations and logs its returns."""

from pathlib import Path

import gymnasium as gym
import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from duet.callbacks.direct_logging import log_to_loggers
from duet.callbacks.episode_video import check_video_support, record_and_log
from duet.callbacks.greedy_rollout import greedy_returns
from duet.callbacks.gym_collector import GymCollector
from duet.callbacks.run_folder import run_folder
from duet.datamodules import option_checks
from duet.datamodules.trainer_attributes import trainer_callbacks


class GreedyEvaluation(L.Callback):
    """Every ``every_n_train_steps`` training iterations, ``episodes`` greedy episodes of the
    collector's environment; logs ``eval/greedy_mean_return``, ``eval/greedy_min_return`` and
    ``eval/env_steps`` (transitions collected so far, prefill included). The training return
    includes exploration; this is the policy a user would deploy. Its episodes are not training
    steps and fill no buffer; they use their own seeds (``seed`` + i), the same every time.

    ``eval/greedy_mean_return`` is also logged for callbacks, so a ModelCheckpoint with
    ``monitor: eval/greedy_mean_return`` keeps the best evaluated policy (set its
    ``every_n_train_steps`` to the same value). Under DDP process 0 plays and tells the others.

    ``stop_at`` ends training at the first evaluation whose greedy mean return reaches it (as
    Stable-Baselines3's StopTrainingOnRewardThreshold does): the run ends as soon as the task is
    solved, with that policy's checkpoint saved by a ModelCheckpoint monitoring the evaluation.

    ``video_episodes`` > 0 also records that many greedy episodes (the first evaluation seeds) at
    each evaluation: MP4 files in ``<run>/videos/``, and ``eval/video`` in W&B.
    Recording needs the render extra (moviepy, and pygame for the classic-control scenes).
    """

    def __init__(
        self,
        every_n_train_steps: int = 2_500,
        episodes: int = 50,
        seed: int = 10_000,
        video_episodes: int = 0,
        stop_at: float | None = None,
    ):
        option_checks.at_least("GreedyEvaluation", "every_n_train_steps", every_n_train_steps, 1)
        option_checks.at_least("GreedyEvaluation", "episodes", episodes, 1)
        option_checks.at_least("GreedyEvaluation", "video_episodes", video_episodes, 0)
        if video_episodes:
            check_video_support("GreedyEvaluation: video_episodes > 0", "set video_episodes: 0")
        self.every_n_train_steps = every_n_train_steps
        self.episodes = episodes
        self.seed = seed
        self.video_episodes = video_episodes
        self.stop_at = stop_at

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # A collective under DDP, while videos are recorded on process 0 alone: resolved here.
        self.run_dir = Path(run_folder(trainer))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_train_steps:
            return
        collector = self.collector_of(trainer)
        returns = None
        if trainer.is_global_zero:  # one process evaluates the (identical) weights
            env_id, env_kwargs = collector.env_id, collector.env_kwargs
            returns = greedy_returns(pl_module, env_id, self.episodes, self.seed, env_kwargs)
            if self.video_episodes and not trainer.fast_dev_run:
                count = self.video_episodes
                env = gym.make(env_id, render_mode="rgb_array", **env_kwargs)
                videos = self.run_dir / "videos"
                record_and_log(trainer, pl_module, env, count, self.seed, "eval/video", videos)
        returns = trainer.strategy.broadcast(returns, src=0)
        mean = float(returns.mean())
        pl_module.log("eval/greedy_mean_return", mean, logger=False, batch_size=1)
        metrics = {
            "eval/greedy_mean_return": mean,
            "eval/greedy_min_return": float(returns.min()),
            "eval/env_steps": float(collector.env_steps),
        }
        log_to_loggers(trainer, metrics, iteration=trainer.global_step)  # after that iteration
        if self.stop_at is not None and mean >= self.stop_at:  # the same on every process
            rank_zero_info(
                f"GreedyEvaluation: greedy mean return {mean:.1f} reached stop_at={self.stop_at} "
                f"after {trainer.global_step} iterations; training stops."
            )
            trainer.should_stop = True

    @staticmethod
    def collector_of(trainer: L.Trainer) -> GymCollector:
        """The trainer's collector, whose environment is evaluated."""
        collectors = [c for c in trainer_callbacks(trainer) if isinstance(c, GymCollector)]
        if not collectors:
            raise RuntimeError(
                "GreedyEvaluation plays the environment of a GymCollector: add a collector: "
                "section to the config (or one to trainer.callbacks)."
            )
        return collectors[0]
