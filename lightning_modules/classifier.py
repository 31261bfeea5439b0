"""An MNIST classifier: the feature space of FID, KID and the Inception Score for digits."""

from collections.abc import Iterable

import lightning as L
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor
from torch.optim import Adam, Optimizer
from torchmetrics.classification import MulticlassAccuracy

from duet.datamodules import option_checks
from duet.lightning_modules.checkpoints import check_state_matches
from duet.lightning_modules.networks.lenet import LeNet
from duet.lightning_modules.steps import record_module_class


def classifier_adam(params: Iterable) -> Optimizer:
    return Adam(params, lr=1e-3, fused=True)


class MNISTClassifier(L.LightningModule):
    """LeNet trained with cross-entropy; logs train/loss, val/acc and test/acc.

    Batches are (images (B, 1, 28, 28) in [-1, 1], labels (B,)), as MNISTDataModule serves them.
    """

    def __init__(
        self,
        feature_size: int = 128,
        dropout: float = 0.3,
        optimizer: OptimizerCallable = classifier_adam,
    ) -> None:
        super().__init__()
        option_checks.at_least("MNISTClassifier", "feature_size", feature_size, 1)
        valid = isinstance(dropout, int | float) and 0 <= dropout < 1
        option_checks.require("MNISTClassifier", "dropout", dropout, valid, "in [0, 1)")
        option_checks.learning_rates("MNISTClassifier", "optimizer", optimizer)
        self.save_hyperparameters(ignore=["optimizer"])
        self.network = LeNet(feature_size, dropout)
        self.optimizer = optimizer
        self.val_accuracy = MulticlassAccuracy(num_classes=10, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes=10, average="micro")

    def configure_optimizers(self) -> Optimizer:
        return self.optimizer(self.parameters())

    def forward(self, images: Tensor) -> Tensor:
        return self.network(images)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        loss = F.cross_entropy(self(images), labels)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        self.val_accuracy(self(images), labels)
        self.log("val/acc", self.val_accuracy, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        self.test_accuracy(self(images), labels)
        self.log("test/acc", self.test_accuracy)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        record_module_class(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_state_matches(self, checkpoint)
