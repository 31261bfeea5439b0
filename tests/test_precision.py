"""Mixed precision with manual optimization: every module trains in bf16-mixed and resumes
exactly; the GANs train with float16 and a loss scaler; the agent refuses a loss scaler."""

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from duet.callbacks import GymCollector
from duet.datamodules import ExperienceDataModule
from duet.lightning_modules import DCGAN, GAN, LSGAN, WGANGP, ActEnvAgent, MNISTClassifier
from tests.conftest import tiny_mnist, tiny_trainer
from tests.test_gym_collector import NO_STOP
from tests.test_resume import assert_same_tensors, run


class InitialWeights(L.Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}


def collector() -> GymCollector:
    return GymCollector(prefill_steps=100, stopping=NO_STOP)


GAN_MODULES = {
    "gan": lambda: GAN(noise_dim=8),
    "lsgan": lambda: LSGAN(noise_dim=8),
    "dcgan": lambda: DCGAN(noise_dim=8),
    "wgan_gp": lambda: WGANGP(noise_dim=8, n_critic=2),
}


def experiment(name: str, mnist_dir):
    """(make_module, make_data, make_callbacks) of a tiny run of the named module."""
    if name == "agent":
        make_data = lambda: ExperienceDataModule(capacity=300, batch_size=16)  # noqa: E731
        return ActEnvAgent, make_data, lambda: [collector()]
    if name == "classifier":  # no dropout: its draws come from the global generator
        return lambda: MNISTClassifier(dropout=0.0), lambda: tiny_mnist(mnist_dir), list
    return GAN_MODULES[name], lambda: tiny_mnist(mnist_dir), list


def trains_and_resumes_exactly(name, mnist_dir, tmp_path, make_precision, steps=4) -> L.Trainer:
    """Trains ``steps`` iterations, and half of them resumed to the end; the whole run's
    trainer. ``make_precision()``: the Trainer options that set the precision."""
    make_module, make_data, make_callbacks = experiment(name, mnist_dir)

    def options():
        return dict(log_every_n_steps=1, limit_val_batches=0, **make_precision())

    initial = InitialWeights()
    extra = [initial, *make_callbacks()]
    whole, module, _, rows = run(tmp_path / "w", make_module, make_data, steps, extra, **options())
    part = steps // 2
    run(tmp_path / "p", make_module, make_data, part, make_callbacks(), None, part, **options())
    checkpoint = tmp_path / "p" / "ckpt" / "last.ckpt"
    _, resumed, _, _ = run(
        tmp_path / "r", make_module, make_data, steps, make_callbacks(), checkpoint, **options()
    )
    assert whole.global_step == steps
    losses = [value for row in rows for value in row.values()]
    assert losses and all(torch.isfinite(torch.tensor(losses))), rows
    changed = [k for k, v in module.state_dict().items() if not torch.equal(v, initial.weights[k])]
    assert any("weight" in k for k in changed), "no weight changed"
    assert_same_tensors(module.state_dict(), resumed.state_dict(), "weights")
    return whole


# DCGAN's bf16 convolutions and WGAN-GP under a loss scaler are slow on a CPU: in make test-all.
SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "name",
    [
        "gan",
        "lsgan",
        pytest.param("dcgan", marks=SLOW),
        "wgan_gp",
        "agent",
        "classifier",
    ],
)
def test_bf16_mixed_trains_every_module_and_resumes_exactly(name, mnist_dir, tmp_path):
    trains_and_resumes_exactly(name, mnist_dir, tmp_path, lambda: {"precision": "bf16-mixed"})


@pytest.mark.parametrize("name", ["gan", pytest.param("wgan_gp", marks=SLOW)])
def test_float16_with_a_loss_scaler_trains_the_gans_and_resumes_exactly(name, mnist_dir, tmp_path):
    # Lightning swaps 16-mixed for bf16-mixed on the CPU; the plugin itself runs float16 here.
    def make_precision():
        return {"plugins": [MixedPrecision("16-mixed", "cpu")]}

    whole = trains_and_resumes_exactly(name, mnist_dir, tmp_path, make_precision)
    assert whole.precision_plugin.scaler is not None
    assert whole.precision == "16-mixed"
    saved = torch.load(tmp_path / "p" / "ckpt" / "last.ckpt", weights_only=True)
    assert saved["MixedPrecision"]["scale"] > 0  # the scaler's state travels with the run


def test_the_agent_refuses_a_float16_loss_scaler(tmp_path):
    trainer = tiny_trainer(
        tmp_path, max_steps=1, callbacks=[collector()], plugins=[MixedPrecision("16-mixed", "cpu")]
    )
    with pytest.raises(ValueError, match=r"float16 loss scaler.*bf16-mixed or 32-true"):
        trainer.fit(ActEnvAgent(), datamodule=ExperienceDataModule(capacity=300, batch_size=16))
