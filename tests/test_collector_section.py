"""The agent configs' top-level ``collector:`` section: its grouped options on the command line,
its place among the callbacks, its absence from GAN configs, and resuming across the layouts."""

import sys
from pathlib import Path

import pytest
import torch
import yaml

from duet.callbacks import CheckpointOnException, GreedyEvaluation, GymCollector
from duet.scripts.errors import run_with_clear_errors
from duet.scripts.train import cli_main

REPO = Path(__file__).resolve().parents[1]
CONFIG = ["--config", str(REPO / "configs" / "actenv_cartpole_solved.yaml")]
SOLVED = ["fit", *CONFIG]
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    # LightningCLI warns when pytest's own arguments sit in sys.argv beside args=[...].
    monkeypatch.setattr(sys, "argv", ["duet"])


def test_print_config_shows_the_grouped_options_and_a_command_line_override(capsys):
    with pytest.raises(SystemExit):
        cli_main([*SOLVED, "--collector.rating.discount", "0.99", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)["collector"]
    assert printed["class_path"] == "duet.callbacks.GymCollector"
    options = printed["init_args"]
    assert options["exploration"] == {"start": 1.0, "stop": 0.01, "decay_rate": 2e-4, "hold": 1}
    assert options["rating"] == {"return_scale": 1.0, "return_offset": 0.0, "discount": 0.99}
    assert options["stopping"] == {
        "mean_return": None,
        "max_episodes": None,
        "max_env_steps": 50_000,
        "window": 100,
    }


def test_the_collector_is_reached_by_name_and_follows_the_configs_callbacks():
    overrides = ["--collector.env_id", "Acrobot-v1", "--collector.exploration.hold=4"]
    cli = cli_main([*CONFIG, *overrides, *QUIET], run=False)
    collectors = [c for c in cli.trainer.callbacks if isinstance(c, GymCollector)]
    assert len(collectors) == 1 and None not in cli.trainer.callbacks
    (collector,) = collectors
    assert collector.env_id == "Acrobot-v1" and collector.exploration.schedule.hold == 4
    assert collector.rating.discount == 0.995  # the config's, beside the overridden keys
    # Where the configs listed it before (last of trainer.callbacks): after the evaluation.
    order = [type(c) for c in cli.trainer.callbacks]
    assert order.index(GreedyEvaluation) < order.index(GymCollector)
    assert order.count(CheckpointOnException) == 1


def test_a_gan_config_has_no_collector(mnist_dir):
    gan = ["--config", str(REPO / "configs" / "gan.yaml"), f"--data.data_dir={mnist_dir}"]
    cli = cli_main([*gan, *QUIET], run=False)
    assert cli.config.collector is None
    assert not any(c is None or isinstance(c, GymCollector) for c in cli.trainer.callbacks)


def test_a_bad_grouped_option_and_a_second_collector_are_one_line_errors(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("DUET_DEBUG", raising=False)
    listed = tmp_path / "listed.yaml"
    listed.write_text("trainer:\n  callbacks:\n    - class_path: duet.callbacks.GymCollector\n")
    cases = [
        (["--collector.exploration.stop=-1"], "GymCollector exploration.stop=-1.0 is out of"),
        (["--config", str(listed)], "Two GymCollectors: the config has a collector: section"),
    ]
    for options, message in cases:
        assert run_with_clear_errors(lambda o=options: cli_main([*SOLVED, *o, *QUIET])) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-2].startswith(f"error: {message}"), err[-3:]


def test_a_checkpoint_of_a_collector_in_trainer_callbacks_resumes_in_the_section(
    tmp_path, monkeypatch
):
    """Runs of the previous release listed the collector in trainer.callbacks; its state is
    saved under the same key, GymCollector, and resumes into the collector: section."""
    monkeypatch.chdir(tmp_path)
    listed = tmp_path / "listed.yaml"
    listed.write_text(
        "trainer:\n  callbacks:\n"
        "    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        "      init_args: {dirpath: ckpt, save_last: true}\n"
        "    - class_path: duet.callbacks.GymCollector\n"
        "      init_args: {prefill_steps: 100, stopping: {max_env_steps: 1000}}\n"
        "collector: null\n"
    )
    small = ["--data.batch_size=16", *QUIET]
    first = cli_main([*SOLVED, "--config", str(listed), "--trainer.max_steps=4", *small])
    (before,) = [c for c in first.trainer.callbacks if isinstance(c, GymCollector)]
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert saved["callbacks"]["GymCollector"]["processes"][0]["env_steps"] == before.env_steps
    section = ["--collector.prefill_steps=100", "--collector.stopping.max_env_steps=1000"]
    resumed = cli_main(
        [*SOLVED, *section, "--trainer.max_steps=6", "--ckpt_path=ckpt/last.ckpt", *small]
    )
    (after,) = [c for c in resumed.trainer.callbacks if isinstance(c, GymCollector)]
    assert before.env_steps == 104 and after.env_steps == 106  # continued, not prefilled anew


@pytest.mark.parametrize("spelling", [["max_episodes=null"], ["max_episodes", "~"]])
def test_a_grouped_option_set_to_null_keeps_the_groups_other_fields(spelling):
    # jsonargparse alone reads this null as the string "None" (scripts/collector_section.py).
    reference = ["--config", str(REPO / "configs" / "actenv_cartpole.yaml")]
    null = [f"--collector.stopping.{spelling[0]}", *spelling[1:]]
    rating = ["--collector.rating.discount=null", "--collector.rating.return_offset=-1"]
    cli = cli_main([*reference, *null, *rating, *QUIET], run=False)
    (collector,) = [c for c in cli.trainer.callbacks if isinstance(c, GymCollector)]
    assert collector.stopping.max_episodes is None and collector.stopping.mean_return == 500.0
    assert collector.rating.discount is None and collector.rating.return_offset == -1
    assert collector.rating.return_scale == 500.0
