from callbacks.episode_plot import EpisodeHistory
from callbacks.final_checkpoint import CheckpointOnException, SaveFinalCheckpoint
from callbacks.greedy_evaluation import GreedyEvaluation
from callbacks.gym_collector import GymCollector
from callbacks.sample_grid import SampleGrid
from callbacks.sample_quality import SampleQuality

__all__ = [
    "CheckpointOnException",
    "EpisodeHistory",
    "GreedyEvaluation",
    "GymCollector",
    "SampleGrid",
    "SampleQuality",
    "SaveFinalCheckpoint",
]
