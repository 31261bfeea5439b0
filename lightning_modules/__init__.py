from duet.lightning_modules.actenv import ActEnvAgent
from duet.lightning_modules.classifier import MNISTClassifier
from duet.lightning_modules.conditional_gan import ConditionalGAN
from duet.lightning_modules.gan import DCGAN, GAN, LSGAN
from duet.lightning_modules.wgan_gp import WGANGP

__all__ = ["DCGAN", "GAN", "LSGAN", "WGANGP", "ActEnvAgent", "ConditionalGAN", "MNISTClassifier"]
