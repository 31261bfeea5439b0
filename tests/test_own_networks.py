"""Networks and losses of one's own: injected from YAML or Python, built for the data's image
shape, recorded in checkpoints so that resume and sampling rebuild them; docs/own_model.md runs."""

import functools
import re
from pathlib import Path

import pytest
import torch

from duet.lightning_modules import DCGAN, GAN, WGANGP
from duet.lightning_modules.checkpoints import load_duet_module
from duet.lightning_modules.gan_losses import (
    bce_discriminator_loss,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
)
from duet.lightning_modules.networks import DCGenerator, MLPGenerator
from duet.scripts import sample
from duet.scripts.train import cli_main
from tests.conftest import tiny_mnist, tiny_trainer

REPO = Path(__file__).resolve().parents[1]
PAGE = (REPO / "docs" / "own_model.md").read_text()
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE, flags=re.S)


@pytest.fixture
def own_networks(tmp_path, monkeypatch):
    """docs/own_model.md's module and YAML files, written where the page says, importable."""
    networks, usage, _ = blocks("python")
    (tmp_path / "my_networks.py").write_text(networks)
    wide, loss, _ = blocks("yaml")
    (tmp_path / "wide.yaml").write_text(wide)
    (tmp_path / "loss.yaml").write_text(loss)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return usage


def test_the_pages_generator_and_loss_train_resume_and_sample_through_duet(own_networks, mnist_dir):
    data = [f"--data.data_dir={mnist_dir}", "--data.batch_size=16", *QUIET]
    own = ["--config", "gan", "--config", "wide.yaml", "--config", "loss.yaml", *data]
    cli = cli_main(["fit", *own, "--trainer.max_steps=2"])
    assert type(cli.model.generator).__name__ == "WideGenerator"
    assert cli.model.generator.net[0].out_features == 512  # init_args reached the class
    assert cli.model.generator_loss.__name__ == "softplus_generator_loss"
    # Resumed without the two files: the checkpoint names the network and the loss.
    resumed = cli_main(
        ["fit", "--config", "gan", *data, "--ckpt_path=last", "--trainer.max_steps=4"]
    )
    assert resumed.trainer.global_step == 4
    assert type(resumed.model.generator).__name__ == "WideGenerator"
    assert resumed.model.generator_loss.__name__ == "softplus_generator_loss"
    checkpoint = Path("runs/gan/version_1/checkpoints/last.ckpt")
    assert sample.main([str(checkpoint), "--num", "3", "--out", "s.pt"]) == 0
    assert torch.load("s.pt").shape == (3, 1, 28, 28)


def test_the_pages_relativistic_config_and_python_example_build(own_networks, mnist_dir):
    ragan = blocks("yaml")[2]
    Path("ragan.yaml").write_text(ragan)
    data = [f"--data.data_dir={mnist_dir}", "--data.batch_size=16", *QUIET]
    cli = cli_main(
        ["fit", "--config", "gan", "--config", "ragan.yaml", *data, "--trainer.max_steps=1"]
    )
    assert cli.model.discriminator_loss is relativistic_discriminator_loss
    assert cli.model.generator_loss is relativistic_generator_loss
    namespace: dict = {}
    exec(own_networks, namespace)
    assert namespace["model"].generator.net[0].out_features == 512


def test_a_python_given_network_is_named_in_the_checkpoint_and_rebuilt(mnist_dir, tmp_path):
    builder = functools.partial(DCGenerator)  # a partial of a class, as users write them
    module = GAN(noise_dim=8, generator=builder)
    trainer = tiny_trainer(tmp_path, max_steps=1)
    trainer.fit(module, datamodule=tiny_mnist(mnist_dir))
    trainer.save_checkpoint(tmp_path / "own.ckpt")
    loaded, checkpoint = load_duet_module(tmp_path / "own.ckpt", GAN, "a GAN")
    assert checkpoint["hyper_parameters"]["generator"] == {
        "class_path": "duet.lightning_modules.networks.conv.DCGenerator",
        "init_args": {},
    }
    assert isinstance(loaded.generator, DCGenerator)
    noise = torch.rand(2, 8)
    assert torch.equal(loaded.generate(noise), module.cpu().generate(noise))


def test_a_loss_that_cannot_be_named_trains_and_says_how_to_load_its_checkpoints():
    with pytest.warns(UserWarning, match=r"generator_loss=.*cannot be named in checkpoints"):
        module = GAN(noise_dim=8, generator_loss=lambda real, fake: fake.mean())
    assert "generator_loss" not in module.hparams


def test_the_generator_loss_sees_the_discriminator_steps_real_logits(mnist_dir, tmp_path):
    seen = {}

    def discriminator_loss(real, fake):
        seen["d_real"] = real.detach().clone()
        return bce_discriminator_loss(real, fake)

    def generator_loss(real, fake):
        seen["g_real"] = real
        return -fake.mean()

    module = GAN(noise_dim=8, generator_loss=generator_loss, discriminator_loss=discriminator_loss)
    tiny_trainer(tmp_path, max_steps=1).fit(module, datamodule=tiny_mnist(mnist_dir))
    assert not seen["g_real"].requires_grad and seen["g_real"].shape == (16, 1)
    assert torch.equal(seen["g_real"], seen["d_real"])


def test_relativistic_losses_by_hand():
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [1.0]])
    # mean D(x) = 1, mean D(G(z)) = 0: relative real logits [2, 0], relative fake [-2, 0].
    softplus = torch.nn.functional.softplus
    d_expected = (
        softplus(-torch.tensor([2.0, 0.0])).mean() + softplus(torch.tensor([-2.0, 0.0])).mean()
    )
    g_expected = (
        softplus(-torch.tensor([-2.0, 0.0])).mean() + softplus(torch.tensor([2.0, 0.0])).mean()
    )
    assert relativistic_discriminator_loss(real, fake).item() == pytest.approx(d_expected.item())
    assert relativistic_generator_loss(real, fake).item() == pytest.approx(g_expected.item())


@pytest.mark.parametrize("module_class", [GAN, DCGAN, WGANGP])
def test_networks_are_built_for_the_datamodules_image_shape(module_class, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = {GAN: "gan", DCGAN: "dcgan", WGANGP: "wgan_gp"}[module_class]
    data = ["--data=tests.image_data.RandomImages", "--data.image_shape=[3, 32, 32]"]
    cli = cli_main(["fit", "--config", config, *data, *QUIET, "--trainer.max_steps=2"])
    assert cli.model.image_shape == (3, 32, 32) == cli.model.hparams.image_shape
    assert cli.model.generate(torch.rand(2, 96) * 2 - 1).shape == (2, 3, 32, 32)
    assert cli.trainer.global_step == 2


def test_a_shape_a_network_cannot_take_is_one_line_naming_it():
    with pytest.raises(ValueError, match=r"^DCGenerator cannot take 3×30×30 images: it needs"):
        DCGAN(noise_dim=8, image_shape=(3, 30, 30))
    with pytest.raises(ValueError, match=r"image_shape=None: the DataModule states no image shape"):
        GAN(image_shape=None)


def test_the_reference_networks_keep_their_parameter_counts_at_the_reference_shape():
    counts = {
        "mlp": sum(p.numel() for p in MLPGenerator(4, (1, 28, 28)).parameters()),
        "dc": sum(p.numel() for p in DCGenerator(4, (1, 28, 28)).parameters()),
    }
    assert counts == {"mlp": 1_858_320, "dc": 6_580_801}


def test_a_variant_resumed_without_its_settings_keeps_the_checkpoints(
    mnist_dir, tmp_path, monkeypatch
):
    # DCGAN passes GAN's options on through **options: their defaults are still recognised.
    monkeypatch.chdir(tmp_path)
    data = [f"--data.data_dir={mnist_dir}", "--data.batch_size=16", *QUIET]
    cli_main(
        [
            "fit",
            "--config",
            "dcgan",
            *data,
            "--model.init_args.stabilizers.ema_decay=0.9",
            "--trainer.max_steps=1",
        ]
    )
    resumed = cli_main(
        ["fit", "--config", "dcgan", *data, "--ckpt_path=last", "--trainer.max_steps=2"]
    )
    assert resumed.model.generator_ema is not None and resumed.trainer.global_step == 2


def test_a_checkpoint_from_before_networks_were_options_loads_and_resumes(
    mnist_dir, tmp_path, monkeypatch
):
    # duet 0.2's checkpoints hold no generator, discriminator, losses or image shape: the
    # variant's defaults, the reference ones, are what they were trained with.
    monkeypatch.chdir(tmp_path)
    data = [f"--data.data_dir={mnist_dir}", "--data.batch_size=16", *QUIET]
    cli_main(["fit", "--config", "dcgan", *data, "--trainer.max_steps=1"])
    path = Path("runs/dcgan/version_0/checkpoints/last.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    for name in (*GAN.COMPONENTS, "image_shape"):
        del checkpoint["hyper_parameters"][name]
    del checkpoint["duet_digest"]  # nor a digest
    torch.save(checkpoint, path)
    assert sample.main([str(path), "--num", "2", "--out", "old.pt"]) == 0
    resumed = cli_main(
        ["fit", "--config", "dcgan", *data, "--ckpt_path=last", "--trainer.max_steps=2"]
    )
    assert isinstance(resumed.model.generator, DCGenerator) and resumed.trainer.global_step == 2
