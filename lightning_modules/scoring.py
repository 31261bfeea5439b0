"""A GAN checkpoint scored as ``duet evaluate`` scores it: FID, KID, IS and class shares of its
samples against real images, in the features of a classifier (the MNIST LeNet for MNIST-like
images, the Inception network for others)."""

from collections.abc import Callable

import torch

from duet.lightning_modules.conditional_gan import ConditionalGAN
from duet.lightning_modules.gan_losses import sample_noise
from duet.lightning_modules.networks.conditional import balanced_labels
from duet.lightning_modules.networks.lenet import LeNet
from duet.lightning_modules.quality import SampleQualityMetrics, classifier_input, to_uint8


@torch.no_grad()
def evaluate(
    module,
    classifier,
    test_images,
    train_images,
    num: int,
    batch_size: int,
    seed: int,
    prepare: Callable[[torch.Tensor], torch.Tensor] = classifier_input,
):
    """{"generator": metrics, "real train": metrics}, both against ``test_images`` (uint8): the
    generator's ``num`` samples, and as the floor a perfect generator would reach, ``num`` real
    images that are not among them (``train_images``). ``prepare`` makes uint8 images the
    classifier's input."""
    subset = min(1_000, num, len(test_images), len(train_images))
    metrics = SampleQualityMetrics(classifier, kid_subset_size=subset, prepare=prepare)
    for batch in test_images.split(batch_size):
        metrics.update_real(batch)
    generator = torch.Generator().manual_seed(seed)
    asked, seen = [], []  # a conditional GAN's asked digits and what the classifier sees
    for start in range(0, num, batch_size):
        count = min(batch_size, num - start)
        noise = sample_noise(count, module.noise_dim, generator=generator)
        labels = balanced_labels(count) if isinstance(module, ConditionalGAN) else None
        images = to_uint8(module.generate(noise, labels)).cpu()
        metrics.update_fake(images)
        if labels is not None and isinstance(classifier, LeNet):
            asked.append(labels)
            seen.append(classifier(classifier_input(images)).argmax(dim=1))
    results = {"generator": metrics.compute(seed)}  # class_counts: which digits it draws
    if asked:
        results["generator"].update(digit_accuracy(torch.cat(asked), torch.cat(seen)))
    metrics.reset_fake()
    for batch in train_images[:num].split(batch_size):
        metrics.update_fake(batch)
    results["real train"] = metrics.compute(seed)
    return results


def digit_accuracy(asked: torch.Tensor, seen: torch.Tensor) -> dict:
    """How often the classifier sees the digit a conditional GAN was asked for: overall, and
    for the digit it draws worst."""
    per_digit = [float((seen[asked == d] == d).double().mean()) for d in range(10)]
    worst = min(range(10), key=per_digit.__getitem__)
    return {
        "asked_digit_accuracy": float((seen == asked).double().mean()),
        "asked_digit_accuracy_per_digit": per_digit,
        "worst_asked_digit": worst,
    }
