from duet.callbacks.episode_plot import EpisodeHistory
from duet.callbacks.exploration import ExplorationSchedule
from duet.callbacks.final_checkpoint import CheckpointOnException, SaveFinalCheckpoint
from duet.callbacks.greedy_evaluation import GreedyEvaluation
from duet.callbacks.gym_collector import GymCollector
from duet.callbacks.sample_grid import SampleGrid
from duet.callbacks.sample_quality import SampleQuality
from duet.callbacks.stopping import StoppingRules

__all__ = [
    "CheckpointOnException",
    "EpisodeHistory",
    "ExplorationSchedule",
    "GreedyEvaluation",
    "GymCollector",
    "SampleGrid",
    "SampleQuality",
    "SaveFinalCheckpoint",
    "StoppingRules",
]
