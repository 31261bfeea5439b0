"""What both benchmark scripts share: one case per fresh process, and its peak memory."""

import json
import os
import resource
import subprocess
import sys


def run_in_subprocess(script: str, options: dict) -> dict:
    """Runs ``script --name value ...`` and returns the JSON its last output line holds."""
    command = [sys.executable, script]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
