"""Spectral normalisation of a discriminator (Miyato et al., 2018)."""

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def spectrally_normalised(network: nn.Module) -> nn.Module:
    """``network`` with the weight of every Linear and Conv2d layer divided by its largest
    singular value (estimated by one power iteration per training forward pass), so that each
    layer, and with 1-Lipschitz activations the network, changes its output at most as fast as
    its input. Keeps the layers' initial weights; returns the same network, changed in place."""
    for layer in list(network.modules()):
        if isinstance(layer, nn.Linear | nn.Conv2d):
            spectral_norm(layer)
    return network
