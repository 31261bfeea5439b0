"""The class-conditional GAN: its networks, its training step's labels, sampling a chosen digit,
and how often the classifier sees the asked digit."""

import pytest
import torch

from duet.lightning_modules import GAN, ConditionalGAN, sampling
from duet.lightning_modules.networks import ConditionalMLPGenerator, ProjectionMLPDiscriminator
from duet.lightning_modules.networks.conditional import balanced_labels
from duet.lightning_modules.scoring import digit_accuracy
from duet.scripts import sample
from tests.conftest import tiny_mnist, tiny_trainer


def test_the_projection_discriminator_adds_the_class_embedding_times_the_features():
    torch.manual_seed(0)
    discriminator = ProjectionMLPDiscriminator()
    images, labels = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 3, 3, 9])
    features = discriminator.features(images)  # (4, 256)
    expected = discriminator.head(features) + (discriminator.embed.weight[labels] * features).sum(
        1, keepdim=True
    )
    assert torch.allclose(discriminator(images, labels), expected)
    other = discriminator(images, torch.tensor([1, 3, 3, 9]))
    assert other[0] != discriminator(images, labels)[0] and torch.equal(other[1:], expected[1:])


def test_the_generator_draws_a_different_image_for_another_digit():
    torch.manual_seed(0)
    generator = ConditionalMLPGenerator(noise_dim=8)
    noise = torch.rand(2, 8).repeat(2, 1)
    images = generator(noise, torch.tensor([0, 1, 7, 7]))
    assert images.shape == (4, 1, 28, 28)
    assert not torch.equal(images[0], images[2]) and not torch.equal(images[1], images[3])


def test_balanced_labels_give_each_digit_an_equal_share_in_order():
    labels = balanced_labels(25)
    assert labels.tolist() == sorted(labels.tolist())
    assert set(labels.bincount(minlength=10).tolist()) == {2, 3}


def test_each_fake_is_drawn_for_a_label_of_its_batch(mnist_dir, tmp_path):
    module = ConditionalGAN(noise_dim=8)
    asked, batches = [], []
    draw = module.draw
    module.draw = lambda generator, noise, labels: (
        asked.append(labels) or draw(generator, noise, labels)
    )
    step = module.training_step

    def recording_step(batch, batch_idx):  # Lightning passes batch_idx by this name
        batches.append(batch[1].clone())
        return step(batch, batch_idx)

    module.training_step = recording_step
    tiny_trainer(tmp_path, max_steps=3).fit(module, datamodule=tiny_mnist(mnist_dir))
    assert len(asked) == 6  # a discriminator step and a generator step per iteration
    for index, labels in enumerate(batches):
        assert torch.equal(asked[2 * index], labels) and torch.equal(asked[2 * index + 1], labels)


@pytest.fixture
def cgan_checkpoint(mnist_dir, tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=2)
    trainer.fit(ConditionalGAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    path = tmp_path / "cgan.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_sample_draws_the_asked_digit_or_a_row_per_digit(cgan_checkpoint, tmp_path, capsys):
    sevens, grid = tmp_path / "sevens.pt", tmp_path / "grid.pt"
    assert (
        sample.main([str(cgan_checkpoint), "--num", "6", "--digit", "7", "--out", str(sevens)]) == 0
    )
    assert sample.main([str(cgan_checkpoint), "--num", "25", "--out", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "wrote 6 samples of digit 7" in out and "wrote 30 samples (a row per digit" in out
    module = sampling.load_generator_module(cgan_checkpoint)
    noise_seed_0 = sampling.draw(module, 6, seed=0, labels=torch.full((6,), 7))
    assert torch.equal(torch.load(sevens), noise_seed_0)
    assert torch.load(grid).shape == (30, 1, 28, 28)


def test_sample_refuses_a_digit_for_an_unconditional_gan(mnist_dir, tmp_path, capsys):
    trainer = tiny_trainer(tmp_path, max_steps=1)
    trainer.fit(GAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    trainer.save_checkpoint(tmp_path / "gan.ckpt")
    args = [str(tmp_path / "gan.ckpt"), "--digit", "3", "--out", str(tmp_path / "x.png")]
    assert sample.main(args) == 2
    assert "--digit 3: this checkpoint's GAN is not class-conditional" in capsys.readouterr().err


def test_digit_accuracy_counts_the_asked_digit_per_digit():
    asked = torch.arange(10).repeat_interleave(4)
    seen = asked.clone()
    seen[:2] = 5  # two of the four zeros are seen as fives
    result = digit_accuracy(asked, seen)
    assert result["asked_digit_accuracy"] == 38 / 40
    assert result["worst_asked_digit"] == 0 and result["asked_digit_accuracy_per_digit"][0] == 0.5
