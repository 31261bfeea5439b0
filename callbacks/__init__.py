from callbacks.episode_plot import EpisodeHistory
from callbacks.final_checkpoint import SaveFinalCheckpoint
from callbacks.greedy_evaluation import GreedyEvaluation
from callbacks.gym_collector import GymCollector
from callbacks.sample_grid import SampleGrid
from callbacks.sample_quality import SampleQuality

__all__ = [
    "EpisodeHistory",
    "GreedyEvaluation",
    "GymCollector",
    "SampleGrid",
    "SampleQuality",
    "SaveFinalCheckpoint",
]
