from datamodules.mnist import MNISTDataModule
from datamodules.sampler import ShuffledBatchSampler

__all__ = ["MNISTDataModule", "ShuffledBatchSampler"]
