"""Exact resume: stopped after k iterations (mid-epoch) and resumed, a run ends with the same
weights, optimizer states and logged values as one that never stopped."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from duet.callbacks import GymCollector
from duet.datamodules import ExperienceDataModule, SuccessRating
from duet.lightning_modules import DCGAN, GAN, WGANGP, ActEnvAgent, ConditionalGAN
from duet.lightning_modules.gan_losses import hinge_discriminator_loss, hinge_generator_loss
from duet.lightning_modules.gan_options import Stabilizers
from tests.conftest import tiny_mnist, tiny_trainer
from tests.test_gym_collector import NO_STOP


class LossRecorder(L.Callback):
    """The values a module logged at every iteration."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        metrics = trainer.callback_metrics
        self.rows.append({k: float(v) for k, v in metrics.items() if k.startswith("train/")})


def assert_same_tensors(first: dict, second: dict, what: str) -> None:
    assert first.keys() == second.keys(), what
    for name, value in first.items():
        if isinstance(value, dict):
            assert_same_tensors(value, second[name], f"{what}.{name}")
        elif isinstance(value, torch.Tensor):
            assert torch.equal(value, second[name]), f"{what}.{name}"
        else:
            assert value == second[name], f"{what}.{name}"


EVERY_STEP = {"log_every_n_steps": 1}  # every iteration's logged values are compared


def run(
    root, make_module, make_data, max_steps, extra=(), ckpt_path=None, save_every=None, **options
):
    L.seed_everything(0, verbose=False)  # every run starts as a fresh `duet fit` with seed 0
    recorder = LossRecorder()
    callbacks = [recorder, *extra]
    if save_every:
        callbacks.append(
            ModelCheckpoint(root / "ckpt", every_n_train_steps=save_every, save_last=True)
        )
    trainer = tiny_trainer(
        root,
        max_steps=max_steps,
        callbacks=callbacks,
        enable_checkpointing=bool(save_every),
        **options,
    )
    module, data = make_module(), make_data()
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return trainer, module, data, recorder.rows


@pytest.mark.parametrize(
    "make_module",
    [
        lambda: GAN(noise_dim=8, stabilizers=Stabilizers(ema_decay=0.9)),
        lambda: DCGAN(noise_dim=8),
        lambda: WGANGP(noise_dim=8, n_critic=4),  # its latest G loss is logged between G steps
        lambda: ConditionalGAN(noise_dim=8),
        lambda: GAN(  # every option for small data: augmentation draws from the noise stream
            noise_dim=8,
            stabilizers=Stabilizers(
                augment_translation=0.125, augment_cutout=0.5, spectral_norm=True, r1_weight=1.0
            ),
            generator_loss=hinge_generator_loss,
            discriminator_loss=hinge_discriminator_loss,
        ),
    ],
    ids=["gan", "dcgan", "wgan_gp", "cgan", "gan_small_data_options"],
)
def test_gan_resumed_mid_epoch_ends_identical(make_module, mnist_dir, tmp_path):
    make_data = lambda: tiny_mnist(mnist_dir)  # noqa: E731  15 batches an epoch
    whole, module, _, rows = run(tmp_path / "whole", make_module, make_data, 20, **EVERY_STEP)
    _, _, _, first_rows = run(
        tmp_path / "part", make_module, make_data, max_steps=8, save_every=8, **EVERY_STEP
    )
    checkpoint = tmp_path / "part" / "ckpt" / "last.ckpt"
    resumed, resumed_module, _, second_rows = run(
        tmp_path / "resumed", make_module, make_data, 20, ckpt_path=checkpoint, **EVERY_STEP
    )
    assert resumed.global_step == 20
    assert_same_tensors(module.state_dict(), resumed_module.state_dict(), "weights")
    for ours, theirs in zip(whole.optimizers, resumed.optimizers, strict=True):
        assert_same_tensors(ours.state_dict(), theirs.state_dict(), "optimizer")
    assert first_rows + second_rows == rows
    assert all("train/g_loss" in row for row in second_rows)


@pytest.mark.parametrize(
    "make_module, discount",
    [
        (ActEnvAgent, None),
        (lambda: ActEnvAgent(act_ema_decay=0.9), None),
        (lambda: ActEnvAgent(compile=True), None),
        (lambda: ActEnvAgent(bootstrap_target_decay=0.9), 0.97),  # the target Env resumes too
    ],
    ids=["reference", "act_ema", "compiled", "bootstrap"],
)
def test_agent_resumed_mid_epoch_ends_identical(make_module, discount, tmp_path):
    def make_collector():
        rating = SuccessRating(discount=discount)
        return GymCollector(prefill_steps=300, rating=rating, stopping=NO_STOP)

    make_data = lambda: ExperienceDataModule(capacity=600, batch_size=32, batches_per_epoch=25)  # noqa: E731
    whole_collector = make_collector()
    whole, module, data, rows = run(
        tmp_path / "whole", make_module, make_data, max_steps=60, extra=[whole_collector]
    )
    run(
        tmp_path / "part",
        make_module,
        make_data,
        max_steps=35,
        extra=[make_collector()],
        save_every=35,
    )
    resumed_collector = make_collector()
    resumed, resumed_module, resumed_data, second_rows = run(
        tmp_path / "resumed",
        make_module,
        make_data,
        max_steps=60,
        extra=[resumed_collector],
        ckpt_path=tmp_path / "part" / "ckpt" / "last.ckpt",
    )
    assert resumed.global_step == 60
    assert_same_tensors(module.state_dict(), resumed_module.state_dict(), "weights")
    for ours, theirs in zip(whole.optimizers, resumed.optimizers, strict=True):
        assert_same_tensors(ours.state_dict(), theirs.state_dict(), "optimizer")
    # The replay buffer (contents, write position, ratings) and the sampling generator.
    assert_same_tensors(data.local_state_dict(), resumed_data.local_state_dict(), "datamodule")
    # Episodes, exploration counter, return window, the environments' own state.
    whole_state = whole_collector.local_state_dict()
    resumed_state = resumed_collector.local_state_dict()
    assert whole_state.pop("envs") == resumed_state.pop("envs")
    assert_same_tensors(whole_state, resumed_state, "collector")
    assert rows[35:] == second_rows


def test_a_checkpoint_with_a_gpu_noise_generator_state_resumes_and_samples_on_the_cpu(
    mnist_dir, tmp_path
):
    """Earlier checkpoints carried the noise generator's state, whose size differs between a
    CUDA generator (16 bytes: seed and offset) and a CPU one, so a GPU run could not resume on
    the CPU. Noise now comes from (seed, process, iteration): nothing device-bound is stored."""
    from duet.scripts.sample import main as sample

    make_module = lambda: GAN(noise_dim=8)  # noqa: E731
    make_data = lambda: tiny_mnist(mnist_dir)  # noqa: E731
    run(tmp_path / "part", make_module, make_data, max_steps=4, save_every=4)
    checkpoint = torch.load(tmp_path / "part" / "ckpt" / "last.ckpt", weights_only=True)
    assert "rng_state" not in checkpoint
    checkpoint["rng_state"] = torch.zeros(16, dtype=torch.uint8)  # as a CUDA generator's
    legacy = tmp_path / "from_gpu.ckpt"
    torch.save(checkpoint, legacy)
    with pytest.warns(UserWarning, match="carries a noise generator state"):
        resumed, *_ = run(tmp_path / "resumed", make_module, make_data, 6, ckpt_path=legacy)
    assert resumed.global_step == 6
    assert sample([str(legacy), "--num", "4", "--out", str(tmp_path / "s.pt")]) == 0
    assert torch.load(tmp_path / "s.pt").isfinite().all()
