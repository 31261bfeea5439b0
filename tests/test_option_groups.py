"""Options grouped into small frozen dataclasses (``lightning_modules/option_groups.py``): how a
group is built from a dict, how duet 0.2's flat checkpoints still load and resume, how an old
flat option on the command line is refused, and that no constructor grows past 10 arguments."""

import importlib
import inspect
import pkgutil
import re

import pytest
import torch

from duet.lightning_modules import GAN, WGANGP, ActEnvAgent
from duet.lightning_modules.actenv_options import ActEnvLosses, ActEnvNetworks, AgentOptimization
from duet.lightning_modules.checkpoint_files import DIGEST_KEY
from duet.lightning_modules.checkpoints import CheckpointError, load_duet_module
from duet.lightning_modules.gan_losses import (
    bce_discriminator_loss,
    bce_generator_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from duet.lightning_modules.gan_options import GANOptimization, Stabilizers
from duet.lightning_modules.option_groups import as_group
from duet.scripts.train import cli_main
from tests.conftest import write_mnist

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
LOSSES = "duet.lightning_modules.gan_losses."

# ---- as_group ------------------------------------------------------------------------------


def test_as_group_makes_the_dataclass_from_a_dict_none_or_itself():
    built = as_group(Stabilizers, {"ema_decay": 0.9, "r1_weight": 2.0})
    assert type(built) is Stabilizers
    assert built == Stabilizers(ema_decay=0.9, r1_weight=2.0)
    assert as_group(ActEnvNetworks, None) == ActEnvNetworks()  # the defaults
    assert as_group(AgentOptimization, {}) == AgentOptimization()
    given = GANOptimization(generator_clip_norm=1.0)
    assert as_group(GANOptimization, given) is given


def test_as_group_names_an_unknown_field_with_the_known_ones():
    message = (
        "Stabilizers has no option ema, hinge_loss; its options are augment_cutout, "
        "augment_translation, ema_decay, r1_weight, spectral_norm."
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        as_group(Stabilizers, {"ema": 0.9, "hinge_loss": True, "r1_weight": 1.0})
    with pytest.raises(TypeError, match=r"^ActEnvLosses expected, got 0\.5\.$"):
        as_group(ActEnvLosses, 0.5)


def test_a_module_takes_a_group_as_a_dict_and_stores_it_as_one():
    module = GAN(noise_dim=8, stabilizers={"ema_decay": 0.9})
    assert module.generator_ema is not None and module.r1_weight is None
    assert module.hparams["stabilizers"] == {
        "ema_decay": 0.9,
        "augment_translation": 0.0,
        "augment_cutout": 0.0,
        "spectral_norm": False,
        "r1_weight": None,
    }
    with pytest.raises(TypeError, match=r"^Stabilizers has no option emadecay; its options"):
        GAN(noise_dim=8, stabilizers={"emadecay": 0.9})
    agent = ActEnvAgent(state_size=4, action_size=2, network={"hidden_size": 16})
    assert agent.act.hidden.out_features == 16 and agent.hparams["network"]["hidden_size"] == 16


def test_wgan_gp_takes_keywords_only_and_refuses_the_stabilizers_its_penalty_replaces():
    with pytest.raises(TypeError, match="positional"):
        WGANGP(8)
    for name, value in (("augment_translation", 0.125), ("augment_cutout", 0.5), ("r1_weight", 1)):
        message = rf"^WGANGP does not take stabilizers\.{name}={value!r}: its critic"
        with pytest.raises(ValueError, match=message):
            WGANGP(noise_dim=8, stabilizers={name: value})
    kept = WGANGP(noise_dim=8, stabilizers=Stabilizers(ema_decay=0.9, spectral_norm=True))
    assert kept.generator_ema is not None


# ---- duet 0.2's flat options -----------------------------------------------------------------


def test_upgrade_options_nests_duet_0_2s_flat_options_exactly():
    old = {"noise_dim": 8, "ema_decay": 0.9, "loss_limit": None, "hinge_loss": True}
    assert GAN.upgrade_options(old) == {
        "noise_dim": 8,
        "generator_loss": f"{LOSSES}hinge_generator_loss",
        "discriminator_loss": f"{LOSSES}hinge_discriminator_loss",
        "optimization": {"loss_limit": None},
        "stabilizers": {"ema_decay": 0.9},
    }
    assert old == {"noise_dim": 8, "ema_decay": 0.9, "loss_limit": None, "hinge_loss": True}
    # hinge_loss: false chose the variant's own losses: nothing to replace.
    assert GAN.upgrade_options({"hinge_loss": False, "r1_weight": 1.0}) == {
        "stabilizers": {"r1_weight": 1.0}
    }
    flat_agent = {"state_size": 4, "hidden_size": 16, "follow_env_q": True, "env_clip_norm": 2.0}
    assert ActEnvAgent.upgrade_options(flat_agent) == {
        "state_size": 4,
        "network": {"hidden_size": 16},
        "losses": {"follow_env_q": True},
        "optimization": {"env_clip_norm": 2.0},
    }


def in_duet_0_2_layout(hparams: dict, module_class: type) -> dict:
    """``hparams`` as duet 0.2 stored them: every group's fields at the top level, and a GAN's
    hinge losses as ``hinge_loss: true`` beside the default losses."""
    old = dict(hparams)
    for group in module_class.OPTION_GROUPS:
        old.update(old.pop(group))
    if old.get("generator_loss") == f"{LOSSES}hinge_generator_loss":
        old["generator_loss"] = f"{LOSSES}bce_generator_loss"
        old["discriminator_loss"] = f"{LOSSES}bce_discriminator_loss"
        old["hinge_loss"] = True
    return old


GAN_OPTIONS = [
    "--model.init_args.noise_dim=8",
    "--model.init_args.stabilizers.ema_decay=0.9",
    "--model.init_args.stabilizers.r1_weight=1.0",
    f"--model.init_args.generator_loss={LOSSES}hinge_generator_loss",
    f"--model.init_args.discriminator_loss={LOSSES}hinge_discriminator_loss",
]
AGENT_DATA = ["--collector.prefill_steps=64", "--data.batch_size=16", "--data.capacity=200"]
AGENT_OPTIONS = [
    "--model.init_args.network.hidden_size=16",
    "--model.init_args.losses.imitation_weight=0.5",
    "--model.init_args.optimization.act_clip_norm=1.0",
]


@pytest.fixture(scope="module")
def old_checkpoints(tmp_path_factory):
    """A GAN (EMA, R1 and the hinge losses) and an agent (other network, loss and clipping
    options) trained 2 iterations through the duet command, each checkpoint beside a copy in
    duet 0.2's layout: {name: (data options, new checkpoint, old checkpoint, trained module)}."""
    root = tmp_path_factory.mktemp("old_checkpoints")
    mnist = write_mnist(root / "mnist")
    gan_data = [f"--data.data_dir={mnist}", "--data.batch_size=16"]
    runs = {
        "gan": ("gan", gan_data, GAN_OPTIONS),
        "actenv_cartpole": ("actenv_cartpole", AGENT_DATA, AGENT_OPTIONS),
    }
    found = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name, (config, data, options) in runs.items():
            cli = cli_main(
                ["fit", "--config", config, *data, *QUIET, *options, "--trainer.max_steps=2"]
            )
            new = root / "runs" / name / "version_0" / "checkpoints" / "last.ckpt"
            checkpoint = torch.load(new, weights_only=True)
            hparams = checkpoint["hyper_parameters"]
            checkpoint["hyper_parameters"] = in_duet_0_2_layout(hparams, type(cli.model))
            del checkpoint[DIGEST_KEY]  # duet 0.2 wrote none
            old = root / f"{name}_0_2.ckpt"
            torch.save(checkpoint, old)
            found[name] = (data, new, old, cli.model)
    return found


def test_the_old_layout_is_what_duet_0_2_stored(old_checkpoints):
    """The fixture's rewrite is the flat layout, so the tests below load a real 0.2 layout."""
    _, _, old, _ = old_checkpoints["gan"]
    hparams = torch.load(old, weights_only=True)["hyper_parameters"]
    assert not {"optimization", "stabilizers"} & set(hparams)
    assert (hparams["ema_decay"], hparams["r1_weight"], hparams["hinge_loss"]) == (0.9, 1.0, True)
    assert hparams["generator_loss"] == f"{LOSSES}bce_generator_loss"
    _, _, old, _ = old_checkpoints["actenv_cartpole"]
    hparams = torch.load(old, weights_only=True)["hyper_parameters"]
    assert not {"network", "losses", "optimization"} & set(hparams)
    assert (hparams["hidden_size"], hparams["imitation_weight"]) == (16, 0.5)


def assert_same_weights(module, trained) -> None:
    ours, theirs = module.state_dict(), trained.state_dict()
    assert ours.keys() == theirs.keys()
    for name, value in ours.items():
        assert torch.equal(value, theirs[name].cpu()), name


def test_a_duet_0_2_gan_checkpoint_loads_with_its_options(old_checkpoints):
    _, new, old, trained = old_checkpoints["gan"]
    module, _ = load_duet_module(old, GAN, "a GAN")
    assert module.generator_ema is not None and module.r1_weight == 1.0
    assert module.generator_loss is hinge_generator_loss
    assert module.discriminator_loss is hinge_discriminator_loss
    assert module.noise_dim == 8
    assert_same_weights(module, trained)  # the EMA's copy among them
    same_run, _ = load_duet_module(new, GAN, "a GAN")
    assert dict(module.hparams) == dict(same_run.hparams)
    assert module.hparams["stabilizers"]["ema_decay"] == 0.9


def test_a_duet_0_2_agent_checkpoint_loads_with_its_options(old_checkpoints):
    _, new, old, trained = old_checkpoints["actenv_cartpole"]
    agent, _ = load_duet_module(old, ActEnvAgent, "an agent")
    assert agent.network_options == ActEnvNetworks(hidden_size=16)
    assert agent.loss_options == ActEnvLosses(imitation_weight=0.5)
    assert agent.optimization == AgentOptimization(act_clip_norm=1.0)
    assert agent.act.hidden.out_features == 16
    assert_same_weights(agent, trained)
    same_run, _ = load_duet_module(new, ActEnvAgent, "an agent")
    assert dict(agent.hparams) == dict(same_run.hparams)


def test_a_duet_0_2_gan_checkpoint_resumes_with_its_options(old_checkpoints, tmp_path, monkeypatch):
    """The current gan config sets none of the checkpoint's options: the resumed run has them
    from the upgraded checkpoint (EMA, R1, hinge losses), not the config's defaults."""
    monkeypatch.chdir(tmp_path)
    data, _, old, _ = old_checkpoints["gan"]
    resumed = cli_main(
        ["fit", "--config", "gan", *data, *QUIET, f"--ckpt_path={old}", "--trainer.max_steps=4"]
    )
    model = resumed.model
    assert resumed.trainer.global_step == 4
    assert model.generator_ema is not None and int(model.generator_ema.n_averaged) == 4
    assert model.r1_weight == 1.0 and model.noise_dim == 8
    assert model.generator_loss is hinge_generator_loss
    assert model.discriminator_loss is hinge_discriminator_loss
    assert model.generator_loss is not bce_generator_loss  # gan.yaml's default
    assert model.discriminator_loss is not bce_discriminator_loss


def test_a_duet_0_2_agent_checkpoint_resumes_with_its_options(
    old_checkpoints, tmp_path, monkeypatch
):
    """actenv_cartpole.yaml leaves network.hidden_size at 8, the default: the checkpoint's 16,
    upgraded from the top level, is what the resumed agent is built with."""
    monkeypatch.chdir(tmp_path)
    data, _, old, _ = old_checkpoints["actenv_cartpole"]
    config = ["fit", "--config", "actenv_cartpole", *data, *QUIET]
    resumed = cli_main([*config, f"--ckpt_path={old}", "--trainer.max_steps=4"])
    agent = resumed.model
    assert resumed.trainer.global_step == 4
    assert agent.network_options.hidden_size == 16 and agent.act.hidden.out_features == 16
    assert agent.loss_options.imitation_weight == 0.5
    assert agent.clip_norms == [1.0, None, 1.0, None]  # a_opt, e_opt, a_opt2, e_opt2


def test_a_resume_of_a_duet_0_2_checkpoint_that_changes_a_moved_option_is_refused(
    old_checkpoints, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    data, _, old, _ = old_checkpoints["gan"]
    changed = "--model.init_args.stabilizers.ema_decay=0.5"
    with pytest.raises(
        CheckpointError, match=r"^model\.stabilizers\.ema_decay is 0\.5 here but 0\.9"
    ):
        cli_main(["fit", "--config", "gan", *data, *QUIET, f"--ckpt_path={old}", changed])


# ---- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "option", "message"),
    [
        (
            "gan",
            "--model.init_args.ema_decay=0.9",
            "model.ema_decay moved in duet 0.3: it is model.stabilizers.ema_decay now (in YAML, "
            "ema_decay under stabilizers: in the model's init_args; on the command line "
            "--model.stabilizers.ema_decay).",
        ),
        (
            "gan",
            "--model.init_args.hinge_loss=true",
            "model.hinge_loss was removed in duet 0.3: set model.generator_loss and "
            "model.discriminator_loss to duet.lightning_modules.gan_losses.hinge_generator_loss "
            "and hinge_discriminator_loss.",
        ),
        (
            "actenv_cartpole",
            "--model.init_args.hidden_size=16",
            "model.hidden_size moved in duet 0.3: it is model.network.hidden_size now (in YAML, "
            "hidden_size under network: in the model's init_args; on the command line "
            "--model.network.hidden_size).",
        ),
    ],
    ids=["ema_decay", "hinge_loss", "hidden_size"],
)
def test_an_old_flat_option_is_refused_naming_its_new_place(config, option, message, capsys):
    with pytest.raises(SystemExit) as refused:
        cli_main(["--config", config, option], run=False)
    assert refused.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {message}"


def test_an_old_flat_option_in_yaml_is_refused_naming_its_new_place(tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text("model:\n  init_args:\n    ema_decay: 0.9\n")
    with pytest.raises(SystemExit) as refused:
        cli_main(["--config", "gan", "--config", str(old)], run=False)
    assert refused.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: model.ema_decay moved in duet 0.3: it is "), last


# ---- constructors ----------------------------------------------------------------------------

PACKAGES = ("duet.lightning_modules", "duet.callbacks")
MOST_ARGUMENTS = 10


def duet_classes() -> dict[str, type]:
    """Every class the modules of ``PACKAGES`` (all of them imported) hold from duet."""
    found: dict[str, type] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules = [package]
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            modules.append(importlib.import_module(info.name))
        for module in modules:
            for value in vars(module).values():
                if isinstance(value, type) and value.__module__.startswith("duet."):
                    found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def constructor_arguments(cls: type) -> list[str]:
    """The parameters of ``cls.__init__`` but self, *args and **kwargs."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind not in variadic]


def test_no_constructor_takes_more_than_ten_arguments():
    counts = {name: len(constructor_arguments(cls)) for name, cls in duet_classes().items()}
    # The walk reaches what it must, and counts as meant.
    assert counts["duet.lightning_modules.gan.GAN"] == 10
    assert counts["duet.lightning_modules.wgan_gp.WGANGP"] == 8  # the rest through **options
    assert counts["duet.lightning_modules.actenv.ActEnvAgent"] == 9
    assert "duet.callbacks.gym_collector.GymCollector" in counts
    offenders = {name: count for name, count in counts.items() if count > MOST_ARGUMENTS}
    assert not offenders, f"constructors of more than {MOST_ARGUMENTS} arguments: {offenders}"
