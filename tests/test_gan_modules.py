import lightning as L
import pytest
import torch

from duet.lightning_modules import DCGAN, GAN, LSGAN, WGANGP
from duet.lightning_modules.gan_options import Stabilizers
from tests.conftest import tiny_mnist, tiny_trainer


def parameters_of(network: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in network.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


class SubStepRecorder(L.Callback):
    """Snapshots both networks after every optimizer step, tagged with the optimizer's index."""

    def __init__(self) -> None:
        self.snapshots: list[tuple[int, list, list]] = []

    def on_train_start(self, trainer, module):
        self.snapshots.append(
            (-1, parameters_of(module.generator), parameters_of(module.discriminator))
        )
        for index, optimizer in enumerate(trainer.optimizers):
            optimizer.register_step_post_hook(self._hook(index, module))

    def _hook(self, index, module):
        def record(optimizer, args, kwargs):
            snapshot = (index, parameters_of(module.generator), parameters_of(module.discriminator))
            self.snapshots.append(snapshot)

        return record


@pytest.mark.parametrize("module_class", [GAN, LSGAN, DCGAN])
def test_one_iteration_steps_discriminator_then_generator_each_alone(
    module_class, mnist_dir, tmp_path
):
    recorder = SubStepRecorder()
    trainer = tiny_trainer(tmp_path, max_steps=1, callbacks=[recorder])
    trainer.fit(module_class(noise_dim=8), datamodule=tiny_mnist(mnist_dir))

    (start, g0, d0), (first, g1, d1), (second, g2, d2) = recorder.snapshots
    assert (start, first, second) == (-1, 0, 1)  # discriminator's optimizer, then generator's
    assert same(g0, g1) and not same(d0, d1)  # discriminator step moved only D
    assert same(d1, d2) and not same(g1, g2)  # generator step moved only G
    assert trainer.global_step == 1


def test_global_step_and_max_steps_count_iterations_not_optimizer_steps(mnist_dir, tmp_path):
    recorder = SubStepRecorder()
    trainer = tiny_trainer(tmp_path, max_steps=4, callbacks=[recorder])
    trainer.fit(GAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    assert trainer.global_step == 4
    assert [index for index, *_ in recorder.snapshots[1:]] == [0, 1] * 4


def test_wgan_gp_takes_a_generator_step_after_every_n_critic_steps(mnist_dir, tmp_path):
    recorder, metrics = SubStepRecorder(), LoggedMetrics()
    callbacks = [recorder, metrics]
    trainer = tiny_trainer(tmp_path, max_steps=6, callbacks=callbacks, log_every_n_steps=1)
    trainer.fit(WGANGP(noise_dim=8, n_critic=3), datamodule=tiny_mnist(mnist_dir))
    assert [index for index, *_ in recorder.snapshots[1:]] == [0, 0, 0, 1, 0, 0, 0, 1]
    assert trainer.global_step == 6
    critic = {"train/d_loss", "train/d_real", "train/d_fake"}
    critic |= {"train/wasserstein", "train/gradient_penalty"}
    # No generator loss exists before the first generator step (after iteration 3); from then
    # on the latest one is logged at every iteration.
    assert [set(step) for step in metrics.steps] == [critic] * 2 + [critic | {"train/g_loss"}] * 4


class LoggedMetrics(L.Callback):
    """trainer.logged_metrics after every iteration: what the loggers received."""

    def __init__(self):
        self.steps = []

    def on_train_batch_end(self, trainer, *args):
        self.steps.append(dict(trainer.logged_metrics))


def test_losses_are_logged_only_when_the_loggers_write_them(mnist_dir, tmp_path):
    metrics = LoggedMetrics()
    trainer = tiny_trainer(tmp_path, max_steps=5, callbacks=[metrics], log_every_n_steps=4)
    module = WGANGP(noise_dim=8, n_critic=3)
    trainer.fit(module, datamodule=tiny_mnist(mnist_dir))
    assert [bool(step) for step in metrics.steps] == [False, False, False, True, True]
    # Iteration 4 stepped only the critic: the generator's loss logged is iteration 3's.
    g_loss = metrics.steps[3]["train/g_loss"]
    assert g_loss == metrics.steps[4]["train/g_loss"]


def test_wgan_gp_defaults_follow_the_paper():
    module = WGANGP()
    critic_optimizer, generator_optimizer = module.configure_optimizers()
    for optimizer in (critic_optimizer, generator_optimizer):
        assert optimizer.defaults["lr"] == 1e-4 and optimizer.defaults["betas"] == (0.0, 0.9)
        assert optimizer.defaults["fused"]
    assert (module.n_critic, module.penalty_weight) == (5, 10.0)


def test_reference_defaults():
    module = GAN()
    assert module.noise_dim == 96
    for optimizer in module.configure_optimizers():
        assert isinstance(optimizer, torch.optim.Adam)
        assert optimizer.defaults["lr"] == 1e-3 and optimizer.defaults["betas"] == (0.5, 0.999)
        assert optimizer.defaults["fused"]  # the same update in one kernel


def test_logged_metrics(mnist_dir, tmp_path):
    metrics = LoggedMetrics()
    trainer = tiny_trainer(tmp_path, max_steps=2, log_every_n_steps=1, callbacks=[metrics])
    trainer.fit(GAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    # Exactly these, at every iteration: a key added or renamed must show up here.
    expected = {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"}
    assert [set(step) for step in metrics.steps] == [expected, expected]
    # The losses are the iteration's own, not a stale or averaged copy.
    assert metrics.steps[0]["train/d_loss"] != metrics.steps[1]["train/d_loss"]


def test_generator_ema_follows_the_generator_and_is_used_for_sampling(mnist_dir, tmp_path):
    module = DCGAN(noise_dim=8, stabilizers=Stabilizers(ema_decay=0.5))
    trainer = tiny_trainer(tmp_path, max_steps=3)
    trainer.fit(module, datamodule=tiny_mnist(mnist_dir))
    ema = module.generator_ema
    assert int(ema.n_averaged) == 3
    assert module.sampling_generator is ema.module
    assert not same(parameters_of(ema.module), parameters_of(module.generator))
    assert all(not p.requires_grad for p in ema.parameters())
    noise = torch.zeros(2, 8)
    torch.testing.assert_close(module.generate(noise), ema.module.eval()(noise))
