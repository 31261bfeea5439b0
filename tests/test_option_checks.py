"""Every numeric setting of every public class is checked when the object is built: one message
naming the class, the setting, the value and the allowed range."""

import dataclasses
import inspect

import pytest
import torch

from duet.callbacks import GreedyEvaluation, GymCollector, SampleGrid, SampleQuality
from duet.datamodules import ExperienceDataModule, MNISTDataModule
from duet.lightning_modules import DCGAN, GAN, LSGAN, WGANGP, ActEnvAgent, MNISTClassifier


def adam(lr):
    return lambda params: torch.optim.Adam(params, lr=lr)


CASES = [
    (GAN, "noise_dim", 0),
    (GAN, "image_shape", (1, 0, 28)),
    (GAN, "stabilizers.ema_decay", 1.0),
    (GAN, "generator_optimizer", adam(0.0)),
    (GAN, "discriminator_optimizer", adam(-1.0)),
    (GAN, "optimization.loss_limit", 0.0),
    (GAN, "optimization.generator_clip_norm", 0.0),
    (GAN, "optimization.discriminator_clip_norm", -1.0),
    (GAN, "stabilizers.augment_translation", 0.6),
    (GAN, "stabilizers.augment_cutout", 1.5),
    (GAN, "stabilizers.r1_weight", -1.0),
    (LSGAN, "noise_dim", -2),
    (DCGAN, "stabilizers.ema_decay", 0.0),  # a group DCGAN passes on to GAN through **options
    (WGANGP, "n_critic", 0),
    (WGANGP, "penalty_weight", -1.0),
    (ActEnvAgent, "state_size", 0),
    (ActEnvAgent, "action_size", 0),
    (ActEnvAgent, "network.hidden_size", 0),
    (ActEnvAgent, "network.encode_width", 0),
    (ActEnvAgent, "losses.imitation_weight", -0.5),
    (ActEnvAgent, "losses.q_matching_weight", -1.0),
    (ActEnvAgent, "optimizer", adam(0.0)),
    (ActEnvAgent, "optimization.loss_limit", -1.0),
    (ActEnvAgent, "optimization.act_clip_norm", 0.0),
    (ActEnvAgent, "optimization.env_clip_norm", -1.0),
    (ActEnvAgent, "act_ema_decay", 1.0),
    (ActEnvAgent, "bootstrap_target_decay", 0.0),
    (ActEnvAgent, "losses.follow_margin", 1.5),
    (MNISTClassifier, "feature_size", 0),
    (MNISTClassifier, "dropout", 1.0),
    (MNISTClassifier, "optimizer", adam(float("inf"))),
    (MNISTDataModule, "batch_size", 0),
    (MNISTDataModule, "val_size", -1),
    (MNISTDataModule, "num_workers", -1),
    (ExperienceDataModule, "batch_size", 0),
    (ExperienceDataModule, "capacity", 10),
    (ExperienceDataModule, "batches_per_epoch", 0),
    (GymCollector, "num_envs", 0),
    (GymCollector, "steps_per_iteration", 0),
    (GymCollector, "prefill_steps", -1),
    (GymCollector, "exploration.start", 1.5),
    (GymCollector, "exploration.stop", -0.1),
    (GymCollector, "exploration.decay_rate", -1e-4),
    (GymCollector, "exploration.hold", 0),
    (GymCollector, "rating.return_scale", 0.0),
    (GymCollector, "rating.return_scale", 20.0),  # CartPole's threshold of 475 would rate 23.75
    (GymCollector, "rating.return_offset", 600.0),  # and here −0.25
    (GymCollector, "rating.discount", 1.0),
    (GymCollector, "stopping.max_episodes", 0),
    (GymCollector, "stopping.max_env_steps", 0),
    (GymCollector, "stopping.window", 0),
    (GreedyEvaluation, "every_n_train_steps", 0),
    (GreedyEvaluation, "episodes", 0),
    (GreedyEvaluation, "video_episodes", -1),
    (SampleGrid, "every_n_iterations", 0),
    (SampleGrid, "num_samples", 0),
    (SampleGrid, "nrow", 0),
    (SampleQuality, "every_n_epochs", 0),
    (SampleQuality, "num_samples", 1),
    (SampleQuality, "batch_size", 0),
    (SampleQuality, "kid_subset_size", 1),
    (SampleQuality, "collapse_share", 1.0),
]
# Numeric settings that take any value: seeds, and a threshold or offset without a range.
ANY_VALUE = {"seed", "split_seed", "shuffle_seed", "stopping.mean_return", "stop_at"}
# Scheduler callables have no value to check until there is an optimizer to schedule: they are
# checked in configure_optimizers (tests/test_optimization.py).
SCHEDULERS = {
    "optimization.generator_scheduler",
    "optimization.discriminator_scheduler",
    "optimization.scheduler",
}
# Networks and losses: callables with no number to check (tests/test_own_networks.py).
COMPONENTS = set(GAN.COMPONENTS)


@pytest.mark.parametrize(("cls", "name", "value"), CASES, ids=lambda x: getattr(x, "__name__", x))
def test_an_out_of_range_setting_is_refused_by_name_when_built(cls, name, value):
    with pytest.raises(ValueError) as error:
        build_with(cls, name, value)
    message = str(error.value)
    assert cls.__name__ in message and name in message, message  # a group's key in full
    assert "\n" not in message


def build_with(cls, name: str, value):
    """``cls`` with setting ``name`` at ``value``; ``group.field`` sets a field of the option
    object ``group`` (a dataclass, e.g. GymCollector's ``exploration``), declared by ``cls`` or
    by the base class its ``**options`` reach (DCGAN's ``stabilizers`` are GAN's)."""
    group, _, field = name.partition(".")
    if not field:
        return cls(**{name: value})
    declared = (inspect.signature(k.__init__).parameters for k in cls.__mro__)
    options = next(p[group] for p in declared if group in p).annotation
    return cls(**{group: options(**{field: value})})


def numeric_settings(cls) -> set[str]:
    """The numeric settings of ``cls``, a dataclass option's fields as ``group.field``."""
    numeric = ("int", "float", "OptimizerCallable", "Callable")
    names = set()
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if dataclasses.is_dataclass(parameter.annotation):
            fields = dataclasses.fields(parameter.annotation)
            names |= {f"{name}.{f.name}" for f in fields if any(k in str(f.type) for k in numeric)}
        elif any(kind in str(parameter.annotation) for kind in numeric):
            names.add(name)
    return names - ANY_VALUE - SCHEDULERS - COMPONENTS


@pytest.mark.parametrize(
    "cls",
    [
        GAN,
        WGANGP,
        ActEnvAgent,
        MNISTClassifier,
        MNISTDataModule,
        ExperienceDataModule,
        GymCollector,
        GreedyEvaluation,
        SampleGrid,
        SampleQuality,
    ],
    ids=lambda cls: cls.__name__,
)
def test_every_numeric_setting_has_an_out_of_range_case(cls):
    covered = {name for case_cls, name, _ in CASES if issubclass(cls, case_cls)}  # or inherited
    assert numeric_settings(cls) <= covered | {"compile"}, numeric_settings(cls) - covered


def test_the_defaults_are_in_range():
    for cls in (GAN, WGANGP, ActEnvAgent, MNISTClassifier, ExperienceDataModule, GymCollector):
        cls()
