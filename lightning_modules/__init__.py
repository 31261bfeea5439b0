from lightning_modules.actenv import ActEnvAgent
from lightning_modules.classifier import MNISTClassifier
from lightning_modules.gan import DCGAN, GAN, LSGAN
from lightning_modules.wgan_gp import WGANGP

__all__ = ["DCGAN", "GAN", "LSGAN", "WGANGP", "ActEnvAgent", "MNISTClassifier"]
