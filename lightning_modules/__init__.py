import lightning  # noqa: F401  (sets the variable that runtime.skip_failing_nvml_probe checks)

from duet.lightning_modules.actenv import ActEnvAgent
from duet.lightning_modules.classifier import MNISTClassifier
from duet.lightning_modules.conditional_gan import ConditionalGAN
from duet.lightning_modules.gan import DCGAN, GAN, LSGAN
from duet.lightning_modules.runtime import skip_failing_nvml_probe
from duet.lightning_modules.wgan_gp import WGANGP

skip_failing_nvml_probe()

__all__ = ["DCGAN", "GAN", "LSGAN", "WGANGP", "ActEnvAgent", "ConditionalGAN", "MNISTClassifier"]
