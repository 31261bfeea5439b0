"""Learning-rate schedulers and gradient clipping under manual optimization; the trainer settings
that Lightning applies only under automatic optimization are refused with the option to use."""

from functools import partial

import lightning as L
import pytest
import torch
from torch.optim import SGD
from torch.optim.lr_scheduler import ReduceLROnPlateau, StepLR

from duet.lightning_modules import GAN, WGANGP, ActEnvAgent
from duet.lightning_modules.actenv_options import ActEnvNetworks, AgentOptimization
from duet.lightning_modules.gan import reference_adam
from duet.lightning_modules.gan_options import GANOptimization
from tests.conftest import tiny_mnist, tiny_trainer
from tests.test_resume import EVERY_STEP, assert_same_tensors, run


class RateRecorder(L.Callback):
    """Each optimizer's learning rate during every iteration (read before it steps)."""

    def __init__(self) -> None:
        self.rates: list[list[float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Module hooks run after callbacks, so an epoch's new rate is set in training_step:
        # read at the first optimizer step instead.
        self.rates.append(None)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.rates[-1] is None:
            self.rates[-1] = [opt.param_groups[0]["lr"] for opt in trainer.optimizers]


def halving(step_size: int):
    return partial(StepLR, step_size=step_size, gamma=0.5)


def test_a_scheduler_per_optimizer_steps_once_per_iteration(mnist_dir, tmp_path):
    module = GAN(noise_dim=8, optimization=GANOptimization(generator_scheduler=halving(2)))
    recorder = RateRecorder()
    trainer = tiny_trainer(tmp_path, max_steps=5, callbacks=[recorder])
    trainer.fit(module, datamodule=tiny_mnist(mnist_dir))
    # (discriminator, generator): only the generator's halves, every 2 iterations.
    assert recorder.rates == [
        [1e-3, 1e-3],
        [1e-3, 1e-3],
        [1e-3, 5e-4],
        [1e-3, 5e-4],
        [1e-3, 2.5e-4],
    ]
    (config,) = trainer.lr_scheduler_configs
    assert config.scheduler.optimizer is trainer.optimizers[1]
    assert config.scheduler.last_epoch == 5  # stepped after each of the 5 iterations


def test_an_epoch_scheduler_changes_the_rate_from_the_next_epochs_first_iteration(
    mnist_dir, tmp_path
):
    optimization = GANOptimization(discriminator_scheduler=halving(1), scheduler_interval="epoch")
    module = GAN(noise_dim=8, optimization=optimization)
    recorder = RateRecorder()
    trainer = tiny_trainer(tmp_path, max_epochs=3, limit_train_batches=2, callbacks=[recorder])
    trainer.fit(module, datamodule=tiny_mnist(mnist_dir))
    assert [rates[0] for rates in recorder.rates] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]
    assert [rates[1] for rates in recorder.rates] == [1e-3] * 6


@pytest.mark.parametrize("interval", ["iteration", "epoch"])
def test_a_scheduled_run_resumed_mid_epoch_ends_identical(interval, mnist_dir, tmp_path):
    step_size = 3 if interval == "iteration" else 1
    make_module = lambda: WGANGP(  # noqa: E731
        noise_dim=8,
        n_critic=2,
        optimization=GANOptimization(
            generator_scheduler=halving(step_size),
            discriminator_scheduler=halving(step_size),
            scheduler_interval=interval,
        ),
    )
    make_data = lambda: tiny_mnist(mnist_dir)  # noqa: E731  15 batches an epoch
    whole, module, _, rows = run(tmp_path / "whole", make_module, make_data, 20, **EVERY_STEP)
    run(tmp_path / "part", make_module, make_data, max_steps=8, save_every=8, **EVERY_STEP)
    checkpoint = tmp_path / "part" / "ckpt" / "last.ckpt"
    resumed, resumed_module, _, resumed_rows = run(
        tmp_path / "resumed", make_module, make_data, 20, ckpt_path=checkpoint, **EVERY_STEP
    )
    assert resumed_rows == rows[8:]
    assert_same_tensors(module.state_dict(), resumed_module.state_dict(), "weights")
    for config, resumed_config in zip(
        whole.lr_scheduler_configs, resumed.lr_scheduler_configs, strict=True
    ):
        assert config.scheduler.state_dict() == resumed_config.scheduler.state_dict()
    rates = [opt.param_groups[0]["lr"] for opt in resumed.optimizers]
    assert rates == [opt.param_groups[0]["lr"] for opt in whole.optimizers]
    assert rates[0] < 1e-4  # the schedule did move (20 iterations = 6 halvings, 2 epochs = 1)


def test_a_resume_that_changes_a_scheduled_rate_is_refused(mnist_dir, tmp_path):
    make_data = lambda: tiny_mnist(mnist_dir)  # noqa: E731
    scheduled = GANOptimization(generator_scheduler=halving(2))
    make_module = lambda: GAN(noise_dim=8, optimization=scheduled)  # noqa: E731
    run(tmp_path / "part", make_module, make_data, max_steps=3, save_every=3)
    faster = lambda: GAN(  # noqa: E731
        noise_dim=8,
        generator_optimizer=lambda params: torch.optim.Adam(params, lr=2e-3, betas=(0.5, 0.999)),
        optimization=scheduled,
    )
    with pytest.raises(ValueError, match=r"lr 0\.002 is configured.*started from lr 0\.001"):
        run(
            tmp_path / "resumed",
            faster,
            make_data,
            6,
            ckpt_path=tmp_path / "part" / "ckpt" / "last.ckpt",
        )


def sgd(params):
    return SGD(params, lr=1.0)


def parameters(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in network.named_parameters()}


def weight_change(network: torch.nn.Module, before: dict) -> float:
    after = parameters(network)
    return torch.cat([(after[k] - before[k]).flatten() for k in before]).norm().item()


@pytest.mark.parametrize("clip_norm", [None, 0.01])
def test_gradient_clipping_bounds_each_networks_step(clip_norm, mnist_dir, tmp_path):
    # With SGD at rate 1 a step moves the weights by exactly the (clipped) gradient.
    module = GAN(
        noise_dim=8,
        discriminator_optimizer=sgd,
        generator_optimizer=sgd,
        optimization=GANOptimization(discriminator_clip_norm=clip_norm, generator_clip_norm=None),
    )
    d_before, g_before = parameters(module.discriminator), parameters(module.generator)
    trainer = tiny_trainer(tmp_path, max_steps=1)
    trainer.fit(module, datamodule=tiny_mnist(mnist_dir))
    d_step, g_step = (
        weight_change(module.discriminator, d_before),
        weight_change(module.generator, g_before),
    )
    if clip_norm is None:
        assert d_step > 0.1  # an unclipped step is far larger than the norm tested below
    else:
        assert d_step == pytest.approx(clip_norm, rel=1e-4)
    assert g_step > 0.1  # the generator has no limit


def test_agent_clipping_bounds_each_of_its_two_steps_per_network(tmp_path):
    from duet.callbacks import GymCollector
    from duet.datamodules import ExperienceDataModule
    from tests.test_gym_collector import NO_STOP

    module = ActEnvAgent(
        network=ActEnvNetworks(hidden_size=16, trainable_heads=True),
        optimizer=sgd,
        optimization=AgentOptimization(act_clip_norm=1e-3),
    )
    data = ExperienceDataModule(capacity=200, batch_size=16, seed=0)
    collector = GymCollector(seed=0, prefill_steps=32, stopping=NO_STOP)
    before = {}

    class Snapshot(L.Callback):  # the networks exist once the collector has built them
        def on_train_start(self, trainer, pl_module) -> None:
            before.update(act=parameters(pl_module.act), env=parameters(pl_module.env))

    trainer = tiny_trainer(tmp_path, max_steps=1, callbacks=[collector, Snapshot()])
    trainer.fit(module, datamodule=data)
    assert weight_change(module.act, before["act"]) <= 2e-3 * (1 + 1e-4)  # two clipped steps
    assert weight_change(module.env, before["env"]) > 2e-3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"scheduler_interval": "batch"},
            r"^GAN: optimization\.scheduler_interval must be 'iteration' or 'epoch', got 'batch'",
        ),
        (
            {"generator_clip_norm": 0.0},
            r"^GAN optimization\.generator_clip_norm=0\.0 is out of range",
        ),
    ],
)
def test_bad_options_are_refused_when_the_module_is_built(options, message):
    with pytest.raises(ValueError, match=message):
        GAN(optimization=GANOptimization(**options))


def test_a_plateau_scheduler_is_refused_with_what_to_use(mnist_dir, tmp_path):
    module = GAN(noise_dim=8, optimization={"discriminator_scheduler": ReduceLROnPlateau})
    message = r"GAN: optimization\.discriminator_scheduler is ReduceLROnPlateau"
    with pytest.raises(ValueError, match=message):
        tiny_trainer(tmp_path, max_steps=1).fit(module, datamodule=tiny_mnist(mnist_dir))


def test_the_reference_optimizer_is_unchanged_without_options():
    optimizers = GAN().configure_optimizers()
    assert isinstance(optimizers, tuple) and len(optimizers) == 2
    reference = reference_adam(torch.nn.Linear(1, 1).parameters()).defaults
    assert all(opt.defaults == reference for opt in optimizers)
