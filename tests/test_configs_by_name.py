"""Configs found by name: ``--config gan`` reads the packaged gan.yaml unless a file of that name
exists; ``duet configs`` lists, shows and copies them."""

from pathlib import Path

import pytest

from duet.scripts import configs
from duet.scripts.command import main as duet

REPO = Path(__file__).resolve().parents[1]


def test_a_name_with_or_without_folder_and_suffix_finds_the_packaged_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gan = str(REPO / "configs" / "gan.yaml")
    for value in ("gan", "gan.yaml", "configs/gan.yaml"):
        assert configs.resolve_config(value) == gan
    assert configs.resolve_config("metrics/fid") == str(REPO / "configs" / "metrics" / "fid.yaml")
    args = ["fit", "--config", "gan", "--config=logger/wandb", "-c", "dcgan", "--model", "gan"]
    assert configs.with_packaged_configs(args) == [
        "fit",
        "--config",
        gan,
        f"--config={REPO / 'configs' / 'logger' / 'wandb.yaml'}",
        "-c",
        str(REPO / "configs" / "dcgan.yaml"),
        "--model",
        "gan",  # only --config values are names of configs
    ]


def test_an_existing_path_or_yaml_text_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("gan").write_text("trainer: {max_steps: 1}\n")
    assert configs.resolve_config("gan") == "gan"
    assert configs.resolve_config("trainer: {max_steps: 1}") == "trainer: {max_steps: 1}"


def test_an_unknown_name_names_the_closest_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = r"'wgan': .* did you mean wgan_gp or wgan_gp_rgb\?"
    with pytest.raises(configs.ConfigError, match=expected):
        configs.resolve_config("wgan")


def test_duet_configs_lists_shows_and_copies(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert duet(["configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(maxsplit=1) == ["base", configs.summary(configs.base_config())]
    assert any(
        line.split(maxsplit=1) == ["gan", configs.summary(REPO / "configs/gan.yaml")]
        for line in lines
    )
    assert duet(["configs", "show", "dcgan"]) == 0
    assert capsys.readouterr().out == (REPO / "configs" / "dcgan.yaml").read_text()
    assert duet(["configs", "copy", "metrics/fid", "mine"]) == 0
    assert (tmp_path / "mine" / "fid.yaml").read_text() == (
        REPO / "configs/metrics/fid.yaml"
    ).read_text()
    assert "duet fit --config mine/fid.yaml" in capsys.readouterr().out
    assert duet(["configs", "copy", "metrics/fid", "mine"]) == 1
    assert "mine/fid.yaml exists; add --force" in capsys.readouterr().err
    assert duet(["configs", "copy", "metrics/fid", "mine", "--force"]) == 0


def test_every_config_says_in_its_first_line_what_it_is():
    summaries = {name: configs.summary(path) for name, path in configs.packaged_configs().items()}
    assert len(summaries) == len(list(REPO.glob("configs/**/*.yaml")))
    assert all(10 < len(text) <= 100 for text in summaries.values()), summaries


def test_a_config_that_is_not_yaml_names_its_file_line_and_column(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("model:\n  init_args:\n    noise_dim: [3\n")
    expected = r"^config bad\.yaml is not valid YAML at line 4, column 1: .*\]"
    with pytest.raises(configs.ConfigError, match=expected):
        configs.with_packaged_configs(["fit", "--config", "gan", "--config=bad.yaml"])
