"""The README's examples are true: its Python example trains, and every command and config file it
names exists."""

import re
from pathlib import Path

import pytest

from duet.scripts.command import TOOLS, TRAINING
from duet.scripts.configs import packaged_configs
from tests.conftest import write_mnist

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_python_api_example_trains_and_samples(tmp_path, monkeypatch):
    (example,) = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert "max_steps=200" in example
    monkeypatch.chdir(tmp_path)
    write_mnist(tmp_path / "data")  # where the example's DataModule looks (no download)
    namespace = {}
    exec(example.replace("max_steps=200", "max_steps=2"), namespace)
    assert namespace["trainer"].global_step == 2
    assert tuple(namespace["images"].shape) == (16, 1, 28, 28)


def test_every_duet_command_and_config_the_readme_names_exists():
    commands = set(re.findall(r"(?:^|`|srun )duet ([a-z]+)\b", README, flags=re.M))
    assert commands and commands <= set(TRAINING) | set(TOOLS), commands - set(TRAINING | TOOLS)
    given = set(re.findall(r"--config ([a-z][\w/.]*\w)", README))  # in commands
    listed = set(re.findall(r"^\| `([\w/]*\w)` \|", README, flags=re.M))  # the experiments' table
    packaged = packaged_configs()
    missing = [name for name in given | listed if name.removesuffix(".yaml") not in packaged]
    assert len(listed) >= 8 and not missing, missing


@pytest.mark.parametrize("word", ["../shared", "the seed", "seed's", "so far"])
def test_the_readme_speaks_to_a_stranger(word):
    assert word not in README
