"""Non-finite losses stop training without a sync at every iteration, and no checkpoint ever
holds NaN or infinite weights or optimizer states."""

import math

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from duet.lightning_modules import GAN
from duet.lightning_modules.finite_guard import all_finite, floating_tensors
from duet.lightning_modules.gan_losses import bce_discriminator_loss
from duet.lightning_modules.gan_options import GANOptimization
from tests.conftest import tiny_mnist, tiny_trainer


class BreaksAt(GAN):
    """A GAN whose discriminator loss is multiplied by ``factor`` (NaN by default) in iteration
    ``broken`` (counting from 0)."""

    broken = 2
    factor = float("nan")

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.discriminator_loss = self.breaking_discriminator_loss

    def breaking_discriminator_loss(self, real, fake):
        loss = bce_discriminator_loss(real, fake)
        return loss * self.factor if self.trainer.global_step == self.broken else loss


def fit(tmp_path, module, mnist_dir, every_n_train_steps=None, **options):
    callbacks = []
    if every_n_train_steps:
        callbacks.append(
            ModelCheckpoint(
                tmp_path / "ckpt",
                every_n_train_steps=every_n_train_steps,
                save_last=True,
                save_top_k=-1,
                filename="{step}",
            )
        )
    options = (
        dict(max_steps=12, callbacks=callbacks, enable_checkpointing=bool(callbacks)) | options
    )
    tiny_trainer(tmp_path, **options).fit(module, datamodule=tiny_mnist(mnist_dir))


def saved_checkpoints(tmp_path) -> dict[str, dict]:
    return {p.name: torch.load(p, weights_only=True) for p in (tmp_path / "ckpt").glob("*.ckpt")}


def assert_all_finite(checkpoints: dict[str, dict]) -> None:
    for name, checkpoint in checkpoints.items():
        parts = (checkpoint["state_dict"], checkpoint["optimizer_states"])
        assert all_finite(list(floating_tensors(parts))), name


def test_a_nan_loss_stops_before_the_next_checkpoint_and_names_the_newest(mnist_dir, tmp_path):
    message = r"in iteration 3 \(.*train/d_loss=nan.*stopped at iteration 3.*iteration 2, is "
    with pytest.raises(FloatingPointError, match=message) as error:
        fit(tmp_path, BreaksAt(noise_dim=8), mnist_dir, every_n_train_steps=1)
    checkpoints = saved_checkpoints(tmp_path)
    assert sorted(checkpoints) == ["last.ckpt", "step=1.ckpt", "step=2.ckpt"]
    assert checkpoints["last.ckpt"]["global_step"] == 2
    assert_all_finite(checkpoints)
    assert str(tmp_path / "ckpt" / "last.ckpt") in str(error.value)


class BreaksWeightsAtThirdStep(torch.optim.SGD):
    """SGD whose third step leaves NaN weights; as the generator's optimizer (the last step of an
    iteration), the losses of that iteration are finite."""

    steps = 0

    def step(self, closure=None):
        super().step(closure)
        self.steps += 1
        if self.steps == 3:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))


def test_weights_broken_by_a_step_with_finite_losses_are_never_saved(mnist_dir, tmp_path):
    """Checking the losses alone would save the NaN weights of iteration 3 as the newest
    checkpoint, and name it as the good one."""
    module = GAN(noise_dim=8, generator_optimizer=lambda p: BreaksWeightsAtThirdStep(p, lr=0.1))
    message = "weights or optimizer states became NaN or infinite by iteration 3.*iteration 2, is"
    with pytest.raises(FloatingPointError, match=message):
        fit(tmp_path, module, mnist_dir, every_n_train_steps=1)
    checkpoints = saved_checkpoints(tmp_path)
    assert sorted(checkpoints) == ["last.ckpt", "step=1.ckpt", "step=2.ckpt"]
    assert_all_finite(checkpoints)


def test_a_diverging_learning_rate_leaves_only_finite_checkpoints(mnist_dir, tmp_path):
    """The reported case: Adam at a learning rate of 1e9 for both networks."""
    huge = lambda params: torch.optim.Adam(params, lr=1e9)  # noqa: E731
    module = GAN(noise_dim=8, generator_optimizer=huge, discriminator_optimizer=huge)
    with pytest.raises(FloatingPointError, match=r"NaN or infinite|above loss_limit"):
        fit(tmp_path, module, mnist_dir, every_n_train_steps=1, max_steps=200)
    assert_all_finite(saved_checkpoints(tmp_path))


def test_losses_are_checked_on_logged_iterations_not_every_one(mnist_dir, tmp_path):
    """No checkpoint: the NaN of iteration 2 is found when the loggers next write (iteration
    5 of log_every_n_steps=5), not at once; nothing else syncs on it."""
    with pytest.raises(
        FloatingPointError, match=r"between iterations 1 and 5 .*stopped at iteration 5"
    ):
        fit(tmp_path, BreaksAt(noise_dim=8), mnist_dir, log_every_n_steps=5)


def test_a_nan_in_the_last_iterations_fails_the_run_at_its_end(mnist_dir, tmp_path):
    module = BreaksAt(noise_dim=8)
    module.broken = 10
    message = "between iterations 1 and 12 .*stopped at iteration 12.*wrote no checkpoint"
    with pytest.raises(FloatingPointError, match=message) as raised:
        fit(tmp_path, module, mnist_dir, log_every_n_steps=50)
    assert "resume from that checkpoint" not in str(raised.value)  # there is none to resume


def test_after_a_resume_a_divergence_is_reported_by_the_runs_own_iterations(mnist_dir, tmp_path):
    fit(tmp_path, GAN(noise_dim=8), mnist_dir, every_n_train_steps=4, max_steps=4)
    module = BreaksAt(noise_dim=8)
    module.broken = 5  # the second iteration after the resume
    resume = str(tmp_path / "ckpt" / "last.ckpt")
    with pytest.raises(FloatingPointError, match="between iterations 5 and 7 ") as raised:
        tiny_trainer(tmp_path / "resumed", max_steps=12, log_every_n_steps=7).fit(
            module, datamodule=tiny_mnist(mnist_dir), ckpt_path=resume
        )
    assert "stopped at iteration 7" in str(raised.value)


def test_floating_tensors_find_non_finite_optimizer_states():
    state = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(4)}}, "groups": [1]}
    assert all_finite(list(floating_tensors(state)))
    state["state"][0]["exp_avg"][2] = float("inf")
    assert not all_finite(list(floating_tensors(state)))
    assert len(list(floating_tensors([torch.ones(2, dtype=torch.int64), (torch.ones(1),)]))) == 1


def test_a_finite_but_exploding_loss_stops_at_the_limit(mnist_dir, tmp_path):
    module = BreaksAt(noise_dim=8)  # default optimization.loss_limit: 1e6
    module.factor = 1e9
    message = (
        r"A loss reached .*e\+0[89], above loss_limit 1e\+06, between iterations 1 and 5: "
        r"the run is diverging \(raise model\.optimization\.loss_limit"
    )
    with pytest.raises(FloatingPointError, match=message):
        fit(tmp_path, module, mnist_dir, log_every_n_steps=5)


class RecordsTheBrokenLoss(BreaksAt):
    """BreaksAt that keeps the multiplied loss of iteration ``broken``, to show it was huge."""

    broken_loss: float | None = None

    def breaking_discriminator_loss(self, real, fake):
        loss = super().breaking_discriminator_loss(real, fake)
        if self.trainer.global_step == self.broken:
            self.broken_loss = float(loss.detach())
        return loss


def test_without_a_limit_only_nan_and_infinity_stop_training(mnist_dir, tmp_path):
    module = RecordsTheBrokenLoss(noise_dim=8, optimization=GANOptimization(loss_limit=None))
    module.factor = 1e9
    fit(tmp_path, module, mnist_dir, log_every_n_steps=5)
    # A loss the default limit (1e6) would have stopped at was seen, checked and let through.
    assert module.broken_loss > 1e6 and math.isfinite(module.broken_loss)
    assert module.trainer.state.finished and module.trainer.global_step == 12
    # The last check (at the end of training) passed and covered every iteration.
    assert module.finite_guard.checked_iteration == 12 and module.finite_guard.largest is None


def test_a_huge_learning_rate_stops_instead_of_finishing(mnist_dir, tmp_path):
    """The reported case: Adam at 1e6 drove the losses to ~1e22 and the run finished normally."""
    huge = lambda params: torch.optim.Adam(params, lr=1e6)  # noqa: E731
    module = GAN(noise_dim=8, generator_optimizer=huge, discriminator_optimizer=huge)
    with pytest.raises(FloatingPointError, match=r"above loss_limit|NaN or infinite"):
        fit(tmp_path, module, mnist_dir, max_steps=100, log_every_n_steps=10)
