import math

import pytest
import torch
from torch import nn

from duet.lightning_modules.gan_losses import (
    bce_discriminator_loss,
    bce_generator_loss,
    gradient_penalty,
    ls_discriminator_loss,
    ls_generator_loss,
    sample_noise,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from duet.lightning_modules.networks import (
    DCDiscriminator,
    DCGenerator,
    MLPDiscriminator,
    MLPGenerator,
)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        (MLPDiscriminator(), 267_009),
        (MLPGenerator(noise_dim=4), 1_858_320),
        (DCDiscriminator(), 1_102_721),
        (DCGenerator(noise_dim=4), 6_580_801),
    ],
)
def test_parameter_counts_match_the_seed(network, expected):
    assert count(network) == expected


@pytest.mark.parametrize("generator_class", [MLPGenerator, DCGenerator])
def test_generators_map_noise_to_images_in_range(generator_class):
    images = generator_class(noise_dim=7)(sample_noise(5, 7))
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1


@pytest.mark.parametrize("discriminator_class", [MLPDiscriminator, DCDiscriminator])
@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (3, 784)])
def test_discriminators_take_images_or_flat_vectors(discriminator_class, shape):
    assert discriminator_class()(torch.rand(shape)).shape == (3, 1)


def test_dc_generator_uses_xavier_uniform_weights():
    torch.manual_seed(0)
    layer = DCGenerator(noise_dim=96).net[3]  # Linear 1024 -> 6272
    bound = math.sqrt(6 / (1024 + 6272))
    assert layer.weight.abs().max() <= bound
    assert layer.weight.abs().max() > 0.99 * bound  # uniform fills the whole range, unlike default


@pytest.mark.parametrize(
    "build", [DCDiscriminator, lambda: DCGenerator(noise_dim=96)], ids=["D", "G"]
)
def test_dc_networks_are_initialised_exactly_as_the_reference(build, monkeypatch):
    torch.manual_seed(0)
    ours = build()
    with monkeypatch.context() as patch:  # PyTorch's default initialisation only
        patch.setattr(nn.init, "xavier_uniform_", lambda weight: weight)
        torch.manual_seed(0)
        reference = build()

    def initialize_weights(m):  # the reference notebook's, applied with Module.apply
        if isinstance(m, nn.Linear | nn.ConvTranspose2d):
            nn.init.xavier_uniform_(m.weight.data)

    reference.apply(initialize_weights)
    for (name, value), expected in zip(
        ours.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(value, expected), name


def test_dc_discriminator_has_no_batchnorm():
    assert not any(
        isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in DCDiscriminator().modules()
    )


def test_noise_is_uniform_in_open_interval_seeded_and_has_both_signs():
    noise = sample_noise(64, 96, generator=torch.Generator().manual_seed(1))
    again = sample_noise(64, 96, generator=torch.Generator().manual_seed(1))
    assert noise.shape == (64, 96)
    assert torch.equal(noise, again)
    assert noise.min() >= -1 and noise.max() < 1
    assert (noise < 0).any() and (noise > 0).any()
    assert abs(noise.mean().item()) < 0.05  # 6,144 draws: the mean of U(-1, 1) is 0 ± 0.007


REAL = torch.tensor([[0.5], [-1.0], [3.0]], dtype=torch.float64)
FAKE = torch.tensor([[2.0], [0.0], [-0.25]], dtype=torch.float64)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_bce_losses_match_hand_computation():
    # BCE(x, 1) = log(1 + e^-x), BCE(x, 0) = log(1 + e^x), each averaged over the batch.
    d_expected = sum(softplus(-r) for r in (0.5, -1.0, 3.0)) / 3
    d_expected += sum(softplus(f) for f in (2.0, 0.0, -0.25)) / 3
    g_expected = sum(softplus(-f) for f in (2.0, 0.0, -0.25)) / 3
    assert abs(bce_discriminator_loss(REAL, FAKE).item() - d_expected) < 1e-7
    assert abs(bce_generator_loss(REAL, FAKE).item() - g_expected) < 1e-7


def test_bce_is_stable_for_large_logits():
    logits = torch.tensor([[200.0], [-200.0]], dtype=torch.float64)
    assert abs(bce_generator_loss(None, logits).item() - 100.0) < 1e-7  # (0 + 200) / 2


def test_least_squares_losses_match_hand_computation():
    d_expected = 0.5 * ((0.5 - 1) ** 2 + (-1 - 1) ** 2 + (3 - 1) ** 2) / 3
    d_expected += 0.5 * (2.0**2 + 0.0**2 + 0.25**2) / 3
    g_expected = 0.5 * ((2.0 - 1) ** 2 + (0.0 - 1) ** 2 + (-0.25 - 1) ** 2) / 3
    assert abs(ls_discriminator_loss(REAL, FAKE).item() - d_expected) < 1e-7
    assert abs(ls_generator_loss(REAL, FAKE).item() - g_expected) < 1e-7


def test_wasserstein_losses_match_hand_computation():
    real_mean, fake_mean = (0.5 - 1.0 + 3.0) / 3, (2.0 + 0.0 - 0.25) / 3
    assert abs(wasserstein_critic_loss(REAL, FAKE).item() - (fake_mean - real_mean)) < 1e-7
    assert abs(wasserstein_generator_loss(REAL, FAKE).item() + fake_mean) < 1e-7


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared():
    critic = nn.Linear(4, 1).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, 1.0, 2.0, 0.0]]))  # norm 3, gradient everywhere
    real, fake = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    penalty = gradient_penalty(critic, real, fake, torch.rand(5, dtype=torch.float64))
    assert abs(penalty.item() - (3.0 - 1.0) ** 2) < 1e-7
    penalty.backward()  # differentiable with respect to the critic (create_graph)
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_gradient_penalty_is_taken_at_the_interpolates():
    critic = lambda x: (x**2).sum(dim=1, keepdim=True)  # noqa: E731  gradient 2x
    real = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    fake = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    mix = torch.tensor([0.25], dtype=torch.float64)  # x̂ = (0.25, 0), ‖2x̂‖ = 0.5
    assert abs(gradient_penalty(critic, real, fake, mix).item() - 0.25) < 1e-7
