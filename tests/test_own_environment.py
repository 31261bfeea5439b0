"""An environment of one's own, as docs/own_model.md registers it: trained by ``module:EnvId`` with
``env_kwargs``, played as it was trained."""

import re
import shlex
from pathlib import Path

from duet.callbacks import GymCollector
from duet.callbacks.playing import load_agent, make_env, trained_environment
from duet.scripts import play
from duet.scripts.train import cli_main

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "own_model.md").read_text()
SMALL = [
    "--collector.prefill_steps=60",
    "--collector.stopping.max_env_steps=100",
    "--data.init_args.batch_size=16",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def test_the_pages_environment_trains_by_module_and_id_and_plays(tmp_path, monkeypatch, capsys):
    environment = re.findall(r"```python\n(.*?)```", PAGE, flags=re.S)[2]
    (tmp_path / "my_envs.py").write_text(environment)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (commands,) = re.findall(
        r"```bash\nPYTHONPATH=\. duet fit (--config actenv.*?)```", PAGE, flags=re.S
    )
    fit, play_line = commands.replace("\\\n", " ").strip().splitlines()
    cli = cli_main(["fit", *shlex.split(fit), *SMALL])
    (collector,) = [c for c in cli.trainer.callbacks if isinstance(c, GymCollector)]
    assert (collector.env_id, collector.env_kwargs) == ("my_envs:Corridor-v0", {"length": 4})
    assert cli.trainer.global_step == 40  # 100 transitions, 60 of them the prefill
    checkpoint = tmp_path / "runs/actenv_cartpole_solved/version_0/checkpoints/last.ckpt"
    assert play_line.split()[2:4] == ["play", str(checkpoint.relative_to(tmp_path))]
    _, saved = load_agent(checkpoint)
    env_id, env_kwargs = trained_environment(saved)
    assert (env_id, env_kwargs) == ("my_envs:Corridor-v0", {"length": 4})
    assert make_env(env_id, None, env_kwargs).unwrapped.length == 4
    capsys.readouterr()
    assert play.main([str(checkpoint), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].endswith("over 2 episodes on my_envs:Corridor-v0")
