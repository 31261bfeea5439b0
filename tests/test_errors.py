"""Configuration and input errors reach the user as one line; bugs keep their traceback."""

import re
from pathlib import Path

import pytest
import torch

from duet.scripts.errors import run_with_clear_errors
from duet.scripts.train import cli_main

REPO = Path(__file__).resolve().parents[1]
AGENT = ["fit", "--config", str(REPO / "configs" / "actenv_cartpole.yaml")]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--collector.num_envs=0", "num_envs"),
        ("--collector.env_id=Pendulum-v1", "needs a Discrete action space"),
        ("--data.init_args.capacity=10", "capacity=10 is smaller than batch_size"),
    ],
)
def test_an_error_while_the_cli_builds_the_run_is_one_line(option, message, capsys, monkeypatch):
    monkeypatch.delenv("DUET_DEBUG", raising=False)
    assert run_with_clear_errors(lambda: cli_main([*AGENT, option])) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2].startswith("error: ") and message in err[-2], err[-3:]
    assert err[-1] == "(set DUET_DEBUG=1 for the full traceback)"
    assert not any("Traceback" in line or "Namespace(" in line for line in err)


def test_an_exception_raised_outside_duet_keeps_its_traceback():
    with pytest.raises(RuntimeError, match=r"size mismatch|shapes cannot be multiplied"):
        run_with_clear_errors(lambda: torch.zeros(2, 3) @ torch.zeros(2, 3))


def test_duet_debug_keeps_the_traceback_of_duet_errors(monkeypatch):
    monkeypatch.setenv("DUET_DEBUG", "1")
    with pytest.raises(Exception, match="num_envs"):
        run_with_clear_errors(lambda: cli_main([*AGENT, "--collector.num_envs=0"]))


def test_the_scripts_exit_status_passes_through():
    assert run_with_clear_errors(lambda: 2) == 2 and run_with_clear_errors(lambda: None) == 0


@pytest.mark.parametrize(
    ("config", "options"),
    [
        ("actenv_cartpole.yaml", ["--collector.prefill_steps=300"]),
        ("gan.yaml", ["--data.data_dir={mnist}", "--data.batch_size=16"]),
    ],
)
def test_a_run_prints_no_message_a_user_cannot_act_on(config, options, mnist_dir, tmp_path):
    import os
    import subprocess
    import sys

    from duet.scripts.quiet import KNOWN

    command = [sys.executable, str(REPO / "scripts" / "train.py"), "fit", "--config"]
    command += [str(REPO / "configs" / config), "--trainer.max_steps=2"]
    command += [option.format(mnist=mnist_dir) for option in options]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "💡" not in output
    for message in KNOWN:
        assert not re.search(message, output), message


def test_an_error_raised_in_duet_reached_through_a_symbolic_link_is_still_one_line(
    tmp_path, capsys, monkeypatch
):
    from duet.scripts import errors

    monkeypatch.delenv("DUET_DEBUG", raising=False)
    link = tmp_path / "linked"
    link.symlink_to(Path(errors.__file__).resolve().parents[1] / "lightning_modules")
    namespace: dict = {}
    code = "def fail():\n    raise ValueError('GAN noise_dim=0 is out of range')\n"
    exec(compile(code, str(link / "gan.py"), "exec"), namespace)  # a duet file, by the link
    assert errors.run_with_clear_errors(namespace["fail"]) == 1
    assert capsys.readouterr().err.startswith("error: GAN noise_dim=0 is out of range")
