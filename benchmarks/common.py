"""What both benchmark scripts share: one case per fresh process, its peak memory, and the
progress bar an experiment's config sets."""

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def run_in_subprocess(script: str, options: dict) -> dict:
    """Runs ``script --name value ...`` (a list value: its flag once per item) and returns the
    JSON its last output line holds."""
    command = [sys.executable, script]
    for name, value in options.items():
        for item in value if isinstance(value, list) else [value]:
            command += [f"--{name.replace('_', '-')}", str(item)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_results(args, results) -> None:
    """The run's arguments and raw results as JSON into ``args.json`` (when given)."""
    if args.json:
        options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"args": options, "results": results}, indent=2))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def configured_progress_bar(config: str):
    """A TQDMProgressBar that redraws as ``configs/<config>.yaml`` has it redrawn (its
    ``progress_bar_refresh_rate``; else after every iteration, as Lightning's default bar)."""
    import yaml
    from lightning.pytorch.callbacks import TQDMProgressBar

    settings = yaml.safe_load((CONFIGS / f"{config}.yaml").read_text())
    return TQDMProgressBar(refresh_rate=settings.get("progress_bar_refresh_rate") or 1)
