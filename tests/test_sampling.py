"""The sample-grid callback and scripts/sample.py."""

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from duet.callbacks import SampleGrid
from duet.lightning_modules import DCGAN, GAN, sampling
from duet.lightning_modules.gan_options import Stabilizers
from duet.scripts import sample
from tests.conftest import tiny_mnist, tiny_trainer


def test_sample_grid_writes_pngs_and_tensorboard_images(mnist_dir, tmp_path):
    logger = TensorBoardLogger(tmp_path, name="tb")
    grid = SampleGrid(every_n_iterations=2, num_samples=9, nrow=3)
    trainer = tiny_trainer(tmp_path, max_steps=5, callbacks=[grid], logger=logger)
    trainer.fit(GAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    samples = sorted(p.name for p in (tmp_path / "tb" / "version_0" / "samples").iterdir())
    assert samples == [
        "iter_000002.png",
        "iter_000004.png",
        "iter_000005.png",
    ]  # 5 = end of training
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb" / "version_0"))
    events.Reload()
    # At the logger steps of iterations 2, 4 and 5 (Lightning logs iteration k at step k − 1).
    assert [event.step for event in events.Images("samples")] == [1, 3, 4]


def test_sample_grid_noise_is_fixed_across_calls(mnist_dir, tmp_path):
    grid = SampleGrid(num_samples=4, seed=7)
    trainer = SimpleNamespace(loggers=[], log_dir=str(tmp_path), default_root_dir=str(tmp_path))
    grid.setup(trainer, GAN(noise_dim=8), "fit")
    first = grid.noise.clone()
    grid.setup(trainer, GAN(noise_dim=8), "fit")
    assert torch.equal(first, grid.noise)


def test_sample_grid_rejects_non_gan_modules():
    with pytest.raises(TypeError, match="Remove SampleGrid"):
        SampleGrid().setup(None, L.LightningModule(), "fit")


@pytest.fixture
def dcgan_checkpoint(mnist_dir, tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=2)
    module = DCGAN(noise_dim=8, stabilizers=Stabilizers(ema_decay=0.9))
    trainer.fit(module, datamodule=tiny_mnist(mnist_dir))
    path = tmp_path / "dcgan.ckpt"
    trainer.save_checkpoint(path)
    return path, module


def test_sample_script_writes_a_tensor_in_unit_range(dcgan_checkpoint, tmp_path):
    path, module = dcgan_checkpoint
    out = tmp_path / "samples.pt"
    assert sample.main([str(path), "--num", "10", "--out", str(out), "--seed", "3"]) == 0
    samples = torch.load(out)
    assert samples.shape == (10, 1, 28, 28) and samples.dtype == torch.float32
    assert samples.min() >= 0 and samples.max() <= 1
    # The loaded module draws exactly what the trained one (its EMA generator) draws.
    expected = sampling.draw(module.cpu().eval(), 10, seed=3)
    torch.testing.assert_close(samples, expected)


def test_sample_script_writes_a_png_grid(dcgan_checkpoint, tmp_path):
    path, _ = dcgan_checkpoint
    out = tmp_path / "grid.png"
    assert sample.main([str(path), "--num", "16", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_script_errors(dcgan_checkpoint, tmp_path, capsys):
    path, _ = dcgan_checkpoint
    assert sample.main([str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err

    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "duet_module": "duet.lightning_modules.agent.ActEnvAgent"}, other)
    assert sample.main([str(other), "--out", str(tmp_path / "x.pt")]) == 2
    assert "not one of the GAN family" in capsys.readouterr().err

    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    assert sample.main([str(garbage), "--out", str(tmp_path / "x.pt")]) == 2
    assert "cannot be read; it is truncated or corrupt" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        sample.main([str(path), "--num", "0", "--out", str(tmp_path / "x.pt")])
    assert "--num must be at least 1" in capsys.readouterr().err
