from duet.datamodules.experience import ExperienceDataModule
from duet.datamodules.mnist import MNISTDataModule
from duet.datamodules.replay import ReplayBuffer, ReplayDataset, Transitions
from duet.datamodules.sampler import ShuffledBatchSampler

__all__ = [
    "ExperienceDataModule",
    "MNISTDataModule",
    "ReplayBuffer",
    "ReplayDataset",
    "ShuffledBatchSampler",
    "Transitions",
]
