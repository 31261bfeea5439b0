from duet.datamodules.experience import ExperienceDataModule
from duet.datamodules.images import ImageDataModule
from duet.datamodules.mnist import MNISTDataModule
from duet.datamodules.rating import SuccessRating
from duet.datamodules.replay import ReplayBuffer, ReplayDataset, Transitions
from duet.datamodules.sampler import ShuffledBatchSampler

__all__ = [
    "ExperienceDataModule",
    "ImageDataModule",
    "MNISTDataModule",
    "ReplayBuffer",
    "ReplayDataset",
    "ShuffledBatchSampler",
    "SuccessRating",
    "Transitions",
]
