"""FID, KID and Inception Score of MNIST samples in the feature space of a trained classifier.

The statistics are torchmetrics' own; this file only supplies the feature extractors (a trained
LeNet's penultimate layer for FID and KID, its class logits for IS) and feeds them images.
Every image goes in as uint8 (B, 1, 28, 28) in [0, 255], real and generated alike.
"""

from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics import Metric

# Imported from their modules: torchmetrics.image exports them only when torch-fidelity (for the
# ImageNet Inception weights, which duet does not use) is installed.
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from duet.lightning_modules.checkpoints import CheckpointError, load_duet_module
from duet.lightning_modules.classifier import MNISTClassifier
from duet.lightning_modules.networks.lenet import LeNet

CLASSIFIER_COMMAND = "make classifier"
DEFAULT_CLASSIFIER = "checkpoints/mnist_classifier.ckpt"


class ClassifierCheckpointError(RuntimeError):
    """The MNIST classifier checkpoint is missing or is not one."""


def load_classifier(path: str | Path) -> LeNet:
    """The LeNet of an MNISTClassifier checkpoint, in eval mode on the CPU."""
    how = (
        f"Make it with `{CLASSIFIER_COMMAND}` (trains configs/mnist_classifier.yaml and writes "
        f"{DEFAULT_CLASSIFIER}), or give the path of another MNISTClassifier checkpoint."
    )
    try:
        module, _ = load_duet_module(path, MNISTClassifier, "an MNISTClassifier")
    except CheckpointError as error:
        raise ClassifierCheckpointError(f"No usable MNIST classifier: {error} {how}") from error
    return module.network


def to_uint8(images: Tensor) -> Tensor:
    """Float images in [-1, 1] -> uint8 in [0, 255], as real MNIST is stored."""
    return ((images + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def classifier_input(images: Tensor) -> Tensor:
    """uint8 (B, C, H, W) -> float (B, 1, 28, 28) in [-1, 1]; channels averaged, resized."""
    x = images.float().div(127.5).sub(1.0)
    if x.shape[1] != 1:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[-2:] != (28, 28):
        x = nn.functional.interpolate(x, size=(28, 28), mode="bilinear", antialias=True)
    return x


class _FrozenClassifier(nn.Module):
    """A trained LeNet that stays in eval mode (no dropout) and out of any optimizer."""

    def __init__(self, classifier: LeNet) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "_FrozenClassifier":
        return super().train(False)


class PenultimateFeatures(_FrozenClassifier):
    """uint8 images (B, C, H, W) -> (B, feature_size) features for FID and KID."""

    def __init__(self, classifier: LeNet) -> None:
        super().__init__(classifier)
        self.num_features = classifier.feature_size  # spares torchmetrics its 299×299 probe

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.features(classifier_input(images))


class ClassLogits(_FrozenClassifier):
    """uint8 images (B, C, H, W) -> (B, 10) class logits for the Inception Score."""

    num_features = 10

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(classifier_input(images))


class ClassCounts(Metric):
    """How many images the classifier assigns to each class, summed over processes: a generator
    that stops drawing a digit shows here long before FID or a sample grid shows it."""

    full_state_update = False

    def __init__(self, classifier: LeNet, num_classes: int = 10) -> None:
        super().__init__()
        self.classify = ClassLogits(classifier)
        zeros = torch.zeros(num_classes, dtype=torch.long)
        self.add_state("counts", default=zeros, dist_reduce_fx="sum")

    def update(self, images: Tensor) -> None:
        self.counts += self.classify(images).argmax(dim=1).bincount(minlength=len(self.counts))

    def compute(self) -> Tensor:
        return self.counts


def class_shares(counts: Tensor) -> dict:
    """Per-class counts -> the counts and the rarest and commonest class with their shares."""
    shares = counts.double() / counts.sum()
    return {
        "class_counts": counts.tolist(),
        "rarest_class": int(shares.argmin()),
        "rarest_share": float(shares.min()),
        "commonest_class": int(shares.argmax()),
        "commonest_share": float(shares.max()),
    }


class SampleQualityMetrics(nn.Module):
    """torchmetrics' FID, KID and IS over one classifier, and the generated images' class shares.
    Real statistics are kept across ``reset_fake``, so real images are seen once. Under DDP each
    process updates with its share and ``compute`` reduces the states across processes
    (torchmetrics' own synchronisation)."""

    def __init__(
        self, classifier: LeNet, kid_subset_size: int = 1_000, kid_subsets: int = 100
    ) -> None:
        super().__init__()
        features = PenultimateFeatures(classifier)
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False)
        self.kid = KernelInceptionDistance(
            feature=features,
            subsets=kid_subsets,
            subset_size=kid_subset_size,
            reset_real_features=False,
        )
        self.inception = InceptionScore(feature=ClassLogits(classifier), splits=10)
        self.classes = ClassCounts(classifier)

    def update_real(self, images: Tensor) -> None:
        self.fid.update(images, real=True)
        self.kid.update(images, real=True)

    def update_fake(self, images: Tensor) -> None:
        self.fid.update(images, real=False)
        self.kid.update(images, real=False)
        self.inception.update(images)
        self.classes.update(images)

    def compute(self) -> dict:
        kid_mean, kid_std = self.kid.compute()
        is_mean, is_std = self.inception.compute()
        return {
            "fid": float(self.fid.compute()),
            "kid_mean": float(kid_mean),
            "kid_std": float(kid_std),
            "is": float(is_mean),
            "is_std": float(is_std),
            **class_shares(self.classes.compute()),
        }

    def reset_fake(self) -> None:
        for metric in (self.fid, self.kid, self.inception, self.classes):
            metric.reset()
