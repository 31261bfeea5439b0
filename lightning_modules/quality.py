"""FID, KID and Inception Score of samples in the feature space of a classifier: for MNIST-like
images a trained LeNet, for others the ImageNet Inception network (``inception.py``).

The statistics are torchmetrics' own; this file only supplies the feature extractors (the
classifier's penultimate layer for FID and KID, its class logits for IS) and feeds them images.
Every image goes in as uint8 (B, C, H, W) in [0, 255], real and generated alike; ``prepare``
turns it into the classifier's input.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

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

CLASSIFIER_COMMAND = "duet fit --config mnist_classifier"
DEFAULT_CLASSIFIER = "checkpoints/mnist_classifier.ckpt"


class ClassifierCheckpointError(RuntimeError):
    """The MNIST classifier checkpoint is missing or is not one."""


def load_classifier(path: str | Path) -> LeNet:
    """The LeNet of an MNISTClassifier checkpoint, in eval mode on the CPU."""
    how = (
        f"Train it with `{CLASSIFIER_COMMAND}` (add --data.data_dir DIR where MNIST is; it writes "
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


class FeatureClassifier(Protocol):
    """What the metrics need of a classifier: an ``nn.Module`` (LeNet, InceptionFeatures) whose
    ``features`` are the space of FID and KID and whose ``head`` gives the class logits of IS."""

    feature_size: int

    def features(self, images: Tensor) -> Tensor: ...

    def head(self, features: Tensor) -> Tensor: ...

    def eval(self) -> "FeatureClassifier": ...

    def requires_grad_(self, requires_grad: bool = True) -> "FeatureClassifier": ...


class SharedClassifier(nn.Module):
    """A trained classifier (``features(x)``, ``head(features)``, ``feature_size``; a LeNet or the
    Inception network), frozen in eval mode (no dropout) and out of any optimizer, that runs once
    per batch: FID, KID, IS and the class counts each ask for the same batch of images, and the
    features and logits of the last batch it saw are kept for them. (The batch is recognised by
    identity; a batch changed in place between two requests would be served stale outputs.)"""

    def __init__(self, classifier: FeatureClassifier, prepare: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.prepare = prepare  # uint8 images -> the classifier's input
        self.num_classes = getattr(classifier, "num_classes", 10)
        self.last: tuple[Tensor, Tensor, Tensor] | None = None  # images, features, logits

    def train(self, mode: bool = True) -> "SharedClassifier":
        return super().train(False)

    @torch.no_grad()
    def outputs(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 images (B, C, H, W) -> (B, feature_size) features and (B, classes) logits."""
        if self.last is None or self.last[0] is not images:
            features = self.classifier.features(self.prepare(images))
            self.last = (images, features, self.classifier.head(features))  # eval: no dropout
        return self.last[1], self.last[2]


class PenultimateFeatures(nn.Module):
    """uint8 images (B, C, H, W) -> (B, feature_size) features for FID and KID."""

    def __init__(self, classifier: SharedClassifier) -> None:
        super().__init__()
        self.shared = classifier
        self.num_features = classifier.classifier.feature_size  # spares torchmetrics a probe

    def forward(self, images: Tensor) -> Tensor:
        return self.shared.outputs(images)[0]


class ClassLogits(nn.Module):
    """uint8 images (B, C, H, W) -> (B, classes) class logits for the Inception Score."""

    def __init__(self, classifier: SharedClassifier) -> None:
        super().__init__()
        self.shared = classifier
        self.num_features = classifier.num_classes

    def forward(self, images: Tensor) -> Tensor:
        return self.shared.outputs(images)[1]


class ClassCounts(Metric):
    """How many images the classifier assigns to each class, summed over processes: a generator
    that stops drawing a digit shows here long before FID or a sample grid shows it."""

    full_state_update = False
    counts: Tensor  # (classes,) int64, registered by add_state

    def __init__(self, classifier: SharedClassifier) -> None:
        super().__init__()
        self.classify = ClassLogits(classifier)
        zeros = torch.zeros(classifier.num_classes, dtype=torch.long)
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
        self,
        classifier: FeatureClassifier,
        kid_subset_size: int = 1_000,
        kid_subsets: int = 100,
        prepare: Callable[[Tensor], Tensor] = classifier_input,
    ) -> None:
        super().__init__()
        shared = SharedClassifier(classifier, prepare)  # one pass per batch for all four metrics
        features = PenultimateFeatures(shared)
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False)
        self.kid = KernelInceptionDistance(
            feature=features,
            subsets=kid_subsets,
            subset_size=kid_subset_size,
            reset_real_features=False,
        )
        self.inception = InceptionScore(feature=ClassLogits(shared), splits=10)
        self.classes = ClassCounts(shared)

    def update_real(self, images: Tensor) -> None:
        self.fid.update(images, real=True)
        self.kid.update(images, real=True)

    def update_fake(self, images: Tensor) -> None:
        self.fid.update(images, real=False)
        self.kid.update(images, real=False)
        self.inception.update(images)
        self.classes.update(images)

    def compute(self, seed: int = 0) -> dict:
        """The figures. KID's random subsets and IS's split order come from ``seed`` (torchmetrics
        draws them from torch's global generator), so the same images always give the same
        figures, on every process; the caller's global generator is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
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
