"""The GAN options for small data (all off by default): differentiable augmentation, spectral
normalisation, the R1 penalty and injected (hinge) losses."""

import copy

import lightning as L
import pytest
import torch
from torch import nn

from duet.lightning_modules import GAN, LSGAN, ConditionalGAN
from duet.lightning_modules.augmentation import BACKGROUND, cut_out, translate
from duet.lightning_modules.gan_losses import (
    bce_discriminator_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    ls_generator_loss,
    r1_penalty,
)
from duet.lightning_modules.gan_options import Stabilizers
from tests.conftest import tiny_mnist, tiny_trainer


def test_translate_moves_each_image_by_its_own_drawn_offset():
    images = torch.rand(6, 2, 9, 9) * 2 - 1
    moved = translate(images, 2, torch.Generator().manual_seed(3))
    offsets = torch.randint(-2, 3, (2, 6), generator=torch.Generator().manual_seed(3))
    for image, out, (dy, dx) in zip(images, moved, offsets.T.tolist(), strict=True):
        expected = torch.full_like(image, BACKGROUND)
        rows, cols = slice(max(dy, 0), 9 + min(dy, 0)), slice(max(dx, 0), 9 + min(dx, 0))
        source_rows = slice(max(-dy, 0), 9 + min(-dy, 0))
        source_cols = slice(max(-dx, 0), 9 + min(-dx, 0))
        expected[:, rows, cols] = image[:, source_rows, source_cols]
        assert torch.equal(out, expected)
    assert offsets.abs().max() > 0  # the draw moved something
    assert translate(images, 0, None) is images


def test_cut_out_blanks_one_square_per_image_and_passes_gradients_elsewhere():
    images = torch.full((8, 1, 10, 10), 0.5, requires_grad=True)
    out = cut_out(images, 4, torch.Generator().manual_seed(0))
    out.sum().backward()
    blanked = out == BACKGROUND  # (8, 1, 10, 10)
    for mask in blanked[:, 0]:
        rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
        assert 2 <= len(rows) <= 4 and 2 <= len(cols) <= 4  # a square, clipped at the border
        assert mask.sum() == len(rows) * len(cols)
    assert torch.equal(images.grad, (~blanked).float())


def test_augmentation_settings_are_checked_and_built():
    with pytest.raises(ValueError, match=r"GAN stabilizers\.augment_cutout=1\.5"):
        GAN(noise_dim=8, stabilizers=Stabilizers(augment_cutout=1.5))
    with pytest.raises(ValueError, match=r"GAN stabilizers\.augment_translation=-0\.1"):
        GAN(noise_dim=8, stabilizers=Stabilizers(augment_translation=-0.1))
    augmentation = GAN(noise_dim=8, stabilizers=Stabilizers(augment_translation=0.25)).augmentation
    assert repr(augmentation) == "DifferentiableAugmentation(translation=0.25, cutout=0.0)"
    assert GAN(noise_dim=8).augmentation is None


def test_hinge_losses_exact_values():
    real, fake = torch.tensor([[2.0], [0.5]]), torch.tensor([[-2.0], [0.0]])
    # mean(relu(1 − [2, 0.5])) + mean(relu(1 + [−2, 0])) = 0.25 + 0.5
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(0.75)
    assert hinge_generator_loss(real, fake).item() == pytest.approx(1.0)


def test_r1_penalty_of_a_linear_discriminator_is_its_squared_weight_norm():
    weight = torch.tensor([1.0, -2.0, 3.0])
    real = torch.randn(5, 3, requires_grad=True)
    assert r1_penalty((real * weight).sum(dim=1, keepdim=True), real).item() == pytest.approx(14.0)


class Blank:
    """A stand-in augmentation: every image becomes background; remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Size, torch.Generator | None]] = []

    def __call__(self, images, generator):
        self.calls.append((images.shape, generator))
        return torch.full_like(images, BACKGROUND) + 0 * images


@pytest.mark.parametrize("make_module", [GAN, ConditionalGAN], ids=["gan", "cgan"])
def test_the_discriminator_judges_augmented_real_and_fake_images(make_module, mnist_dir, tmp_path):
    blank = Blank()
    module = make_module(noise_dim=8)
    module.augmentation = blank
    tiny_trainer(tmp_path, max_steps=1, log_every_n_steps=1).fit(
        module, datamodule=tiny_mnist(mnist_dir)
    )
    # D step: real, then fake; G step: fake. All from the module's per-iteration stream.
    assert [shape for shape, _ in blank.calls] == [torch.Size([16, 1, 28, 28])] * 3
    assert all(generator is module.rng for _, generator in blank.calls)
    metrics = module.trainer.callback_metrics
    if make_module is GAN:  # identical inputs, identical logits
        assert torch.equal(metrics["train/d_real"], metrics["train/d_fake"])


def test_spectral_norm_bounds_every_discriminator_layer_and_round_trips():
    module = GAN(noise_dim=8, stabilizers=Stabilizers(spectral_norm=True))
    layers = [m for m in module.discriminator.modules() if isinstance(m, nn.Linear)]
    assert len(layers) == 3
    images = torch.rand(4, 1, 28, 28)
    for _ in range(100):  # one power iteration per training forward pass
        module.discriminator(images)
    for layer in layers:
        assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1, abs=0.02)
    copy_of = GAN(noise_dim=8, stabilizers=Stabilizers(spectral_norm=True))
    copy_of.load_state_dict(module.state_dict())
    module.eval(), copy_of.eval()
    assert torch.equal(module.discriminator(images), copy_of.discriminator(images))
    assert not any(
        isinstance(m, nn.Linear) and hasattr(m, "parametrizations")
        for m in GAN(noise_dim=8).discriminator.modules()
    )


@pytest.mark.parametrize("variant", [GAN, LSGAN])
def test_hinge_losses_replace_the_variants_losses(variant):
    hinge = dict(generator_loss=hinge_generator_loss, discriminator_loss=hinge_discriminator_loss)
    module = variant(noise_dim=8, **hinge)
    assert module.discriminator_loss is hinge_discriminator_loss
    assert module.generator_loss is hinge_generator_loss
    with pytest.raises(TypeError, match="hinge_loss"):  # duet 0.2's switch is no option now
        variant(noise_dim=8, hinge_loss=True)
    assert GAN(noise_dim=8).discriminator_loss is bce_discriminator_loss
    assert LSGAN(noise_dim=8).generator_loss is ls_generator_loss


class FirstBatch(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.real = batch[0].detach().clone()


def first_step(mnist_dir, root, r1_weight) -> tuple[float, GAN, torch.Tensor]:
    """The first iteration's logged discriminator loss, the module before it, its real batch."""
    torch.manual_seed(0)
    module = GAN(noise_dim=8, stabilizers=Stabilizers(r1_weight=r1_weight))
    initial, first_batch = copy.deepcopy(module), FirstBatch()
    trainer = tiny_trainer(root, max_steps=1, log_every_n_steps=1, callbacks=[first_batch])
    trainer.fit(module, datamodule=tiny_mnist(mnist_dir))
    return trainer.callback_metrics["train/d_loss"].item(), initial, first_batch.real


def test_r1_weight_adds_half_gamma_times_the_penalty_to_the_discriminator_loss(mnist_dir, tmp_path):
    without, initial, real = first_step(mnist_dir, tmp_path / "a", 0.0)
    with_r1, _, same_real = first_step(mnist_dir, tmp_path / "b", 4.0)
    assert torch.equal(real, same_real)
    real.requires_grad_(True)
    penalty = r1_penalty(initial.discriminator(real), real).item()
    assert penalty > 0
    assert with_r1 - without == pytest.approx(4.0 / 2 * penalty, rel=1e-4)
    with pytest.raises(ValueError, match=r"GAN stabilizers\.r1_weight=-1 is out of range"):
        GAN(noise_dim=8, stabilizers=Stabilizers(r1_weight=-1))
