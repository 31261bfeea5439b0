"""The ImageNet Inception network in which FID, KID and IS are usually reported, for images that
are not MNIST-like: torchmetrics' copy of the TensorFlow network (``NoTrainInceptionV3``, from
torch-fidelity), its weights fetched on first use into torch's hub cache."""

import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

INCEPTION_EXTRA = 'pip install "duet[inception]" (or pip install torch-fidelity)'
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"


class FeatureWeightsError(RuntimeError):
    """The Inception network or its weights cannot be had."""


def inception_input(images: Tensor) -> Tensor:
    """uint8 (B, C, H, W) -> uint8 (B, 3, H, W): grey images repeated to RGB; the network resizes
    them to 299×299 itself."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class InceptionFeatures(nn.Module):
    """``features``: (B, 3, H, W) uint8 -> (B, 2048) pool features; ``head``: -> (B, 1008)
    logits without the bias, as torchmetrics' FID, KID and IS use them."""

    feature_size = 2048
    num_classes = 1008

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def features(self, images: Tensor) -> Tensor:
        return self.network(images).reshape(len(images), -1)

    def head(self, features: Tensor) -> Tensor:
        logits = self.network.fc  # torch-fidelity's Inception ends in nn.Linear(2048, 1008)
        assert isinstance(logits, nn.Linear)
        return features @ logits.weight.T


def inception_features(weights: str | Path | None = None) -> InceptionFeatures:
    """The network, with its weights from ``weights`` (a file) or fetched on first use; one line
    naming what to do when torch-fidelity or the weights are missing."""
    if importlib.util.find_spec("torch_fidelity") is None:
        raise FeatureWeightsError(
            "FID, KID and IS of images that are not MNIST-like use the Inception network, which "
            f"needs torch-fidelity, not installed: {INCEPTION_EXTRA}."
        )
    from torchmetrics.image.fid import NoTrainInceptionV3  # needs torch-fidelity

    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    try:
        network = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048"],
            feature_extractor_weights_path=None if weights is None else str(weights),
        )
    except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
        raise FeatureWeightsError(
            f"The Inception weights could not be loaded ({type(error).__name__}: {error}). "
            f"Without internet, download {WEIGHTS_URL} elsewhere and put it at {cached}, or "
            "give its path with --inception-weights FILE."
        ) from error
    return InceptionFeatures(network)
