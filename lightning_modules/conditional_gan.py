"""A class-conditional GAN: the vanilla GAN told which digit to draw."""

from torch import Tensor, nn

from duet.lightning_modules.gan import GAN
from duet.lightning_modules.networks.builders import DiscriminatorBuilder, GeneratorBuilder
from duet.lightning_modules.networks.conditional import (
    ConditionalMLPGenerator,
    ProjectionMLPDiscriminator,
    balanced_labels,
)


class ConditionalGAN(GAN):
    """GAN with the digit as an input of both networks: G(z, y) sees the noise and a one-hot y;
    the projection discriminator D(x, y) judges x as an image of digit y. The networks are the
    reference MLPs with the label added (``networks/conditional.py``); losses, optimizers and
    every option are those of GAN.

    Each iteration the real images come with their labels from the DataModule, and every fake
    image (for the discriminator's step and the generator's) is drawn for the label of a real
    image of the batch, so generated digits keep the data's shares. ``generate(noise, labels)``
    draws the asked digits; without labels, the ten digits in equal shares, in order. Networks
    of one's own take the labels as a second argument of ``forward``.
    """

    num_classes = 10

    def __init__(
        self,
        *,
        generator: GeneratorBuilder = ConditionalMLPGenerator,
        discriminator: DiscriminatorBuilder = ProjectionMLPDiscriminator,
        **options,
    ) -> None:
        super().__init__(generator=generator, discriminator=discriminator, **options)

    def draw(self, generator: nn.Module, noise: Tensor, labels: Tensor | None) -> Tensor:
        if labels is None:
            labels = balanced_labels(len(noise), self.num_classes)
        return generator(noise, labels.to(noise.device))

    def judge(self, images: Tensor, labels: Tensor) -> Tensor:
        return self.discriminator(images, labels)
