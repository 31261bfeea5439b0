"""scripts/play.py on checkpoints made here."""

import pytest
import torch

from duet.callbacks import GymCollector, playing
from duet.scripts import play
from tests.test_gym_collector import fit_agent


@pytest.fixture(scope="module")
def agent_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent")
    trainer, agent, _ = fit_agent(root, GymCollector(prefill_steps=300), max_steps=3)
    path = root / "agent.ckpt"
    trainer.save_checkpoint(path)
    return path, agent


def test_play_prints_each_episode_and_the_mean(agent_checkpoint, capsys):
    path, _ = agent_checkpoint
    assert play.main([str(path), "--episodes", "3", "--seed", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["episode 1", "episode 2", "episode 3"]
    assert lines[3].startswith("mean") and lines[3].endswith("over 3 episodes on CartPole-v1")


def test_play_is_the_greedy_policy_and_repeatable(agent_checkpoint):
    path, trained = agent_checkpoint
    agent, checkpoint = playing.load_agent(path)
    env_id, env_kwargs = playing.trained_environment(checkpoint)
    assert env_kwargs == {}
    assert env_id == "CartPole-v1"
    for name, value in trained.state_dict().items():
        assert torch.equal(agent.state_dict()[name], value.cpu())
    import gymnasium as gym

    first = playing.play(agent, gym.make(env_id), episodes=2, seed=1)
    second = playing.play(agent, gym.make(env_id), episodes=2, seed=1)
    assert first == second and all(total >= 1 for total in first)


def test_play_errors(agent_checkpoint, tmp_path, capsys):
    assert play.main([str(tmp_path / "missing.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    gan = tmp_path / "gan.ckpt"
    torch.save({"state_dict": {}, "duet_module": "duet.lightning_modules.gan.GAN"}, gan)
    assert play.main([str(gan)]) == 2
    assert "not an ActEnvAgent" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        play.main([str(agent_checkpoint[0]), "--episodes", "0"])


def test_play_records_a_video_of_every_episode(agent_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # no display
    path, _ = agent_checkpoint
    assert play.main([str(path), "--episodes", "2", "--video-dir", str(tmp_path / "videos")]) == 0
    videos = sorted(p.name for p in (tmp_path / "videos").iterdir())
    assert videos == ["rl-video-episode-0.mp4", "rl-video-episode-1.mp4"]


def test_video_without_moviepy_names_the_extra_to_install(monkeypatch, tmp_path):
    import importlib.util

    from duet.callbacks.playing import make_env

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "moviepy" else find_spec(name)
    )
    expected = r'^--video-dir records videos with moviepy.*pip install "duet\[render\]"'
    with pytest.raises(ModuleNotFoundError, match=expected):
        make_env("CartPole-v1", tmp_path)
