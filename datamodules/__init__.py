from datamodules.experience import ExperienceDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.replay import ReplayBuffer, ReplayDataset, Transitions
from datamodules.sampler import ShuffledBatchSampler

__all__ = [
    "ExperienceDataModule",
    "MNISTDataModule",
    "ReplayBuffer",
    "ReplayDataset",
    "ShuffledBatchSampler",
    "Transitions",
]
