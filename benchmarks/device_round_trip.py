"""Train every module briefly on a GPU in each precision, then resume and use it on a CPU.

    python benchmarks/device_round_trip.py --data-dir DIR [--configs gan dcgan wgan_gp \
        actenv_cartpole_solved] [--precisions 32-true bf16-mixed 16-mixed] [--iterations 300] \
        [--resume-iterations 20] [--jobs 4] [--threads 2] [--out runs/round_trip] [--json FILE]

For each (config, precision), as a user would run it, each step a fresh process:
  gpu     ``duet fit --config configs/<config>.yaml`` on one GPU for ``--iterations``;
  cpu     the same config resumed from that run's last.ckpt on the CPU, with CUDA hidden, for
          ``--resume-iterations`` more (in bf16-mixed when trained so, else in float32: the CPU
          has no float16 autocast);
  use     ``duet sample`` (the GANs) or ``duet play`` (the agent) of the GPU checkpoint, on the CPU.
Checked: each step exits 0; every loss (logged each iteration) and every weight and optimizer
state of both checkpoints is finite; the table shows each checkpoint's step. ``--json`` keeps
the figures.
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from duet.lightning_modules.finite_guard import all_finite, floating_tensors

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("gan", "dcgan", "wgan_gp", "actenv_cartpole_solved")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def duet(*argv: str, log: Path, threads: int, cpu_only: bool = False) -> float:
    """Runs ``python -m duet.scripts.<argv>``; its wall time. Raises with the log's tail."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": str(threads)}
    if cpu_only:
        env["CUDA_VISIBLE_DEVICES"] = ""
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run([sys.executable, "-m", *argv], stdout=out, stderr=out, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{log.read_text()[-3000:]}")
    return time.perf_counter() - start


def fit(config: str, data_dir: str, run_dir: Path, steps: int, *more: str) -> list[str]:
    data = [] if config.startswith("actenv") else [f"--data.data_dir={data_dir}"]
    return [
        "duet.scripts.train",
        "fit",
        f"--config={REPO / 'configs' / config}.yaml",
        *data,
        f"--trainer.max_steps={steps}",
        "--trainer.max_epochs=-1",
        "--trainer.enable_progress_bar=false",
        "--trainer.log_every_n_steps=1",  # every loss is checked for finiteness
        f"--trainer.logger.init_args.save_dir={run_dir}",
        *more,
    ]


def last_checkpoint(run_dir: Path) -> Path:
    return max(run_dir.rglob("last.ckpt"), key=lambda path: path.stat().st_mtime)


def checkpoint_facts(path: Path) -> dict:
    """The checkpoint's step and whether every tensor of its weights and optimizer states is
    finite (callbacks' states hold infinite sentinels, e.g. ModelCheckpoint's ``kth_value``)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = [checkpoint["state_dict"], checkpoint["optimizer_states"]]
    tensors = list(floating_tensors(state))
    finite = all_finite(tensors)
    return {"global_step": checkpoint["global_step"], "tensors": len(tensors), "finite": finite}


def logged_losses_finite(run_dir: Path) -> tuple[int, bool]:
    """How many loss values the CSV logger wrote under ``run_dir``, and whether all are finite."""
    values = []
    for metrics in run_dir.rglob("metrics.csv"):
        with open(metrics) as file:
            for row in csv.DictReader(file):
                values += [float(v) for k, v in row.items() if "loss" in k and v not in ("", None)]
    return len(values), all(math.isfinite(v) for v in values)


def round_trip(config: str, precision: str, args) -> dict:
    run_dir = args.out / f"{config}_{precision}"
    run_dir.mkdir(parents=True, exist_ok=True)
    first = [f"--trainer.accelerator={args.accelerator}", f"--trainer.precision={precision}"]
    gpu_s = duet(
        *fit(config, args.data_dir, run_dir, args.iterations, *first),
        log=run_dir / "gpu.log",
        threads=args.threads,
    )
    trained = last_checkpoint(run_dir)
    gpu_checkpoint = run_dir / "gpu_last.ckpt"
    trained.rename(gpu_checkpoint)
    losses, losses_finite = logged_losses_finite(run_dir)
    cpu_precision = "bf16-mixed" if precision == "bf16-mixed" else "32-true"
    resumed = fit(
        config,
        args.data_dir,
        run_dir / "cpu",
        args.iterations + args.resume_iterations,
        "--trainer.accelerator=cpu",
        f"--trainer.precision={cpu_precision}",
        f"--ckpt_path={gpu_checkpoint}",
    )
    cpu_s = duet(*resumed, log=run_dir / "cpu.log", threads=args.threads, cpu_only=True)
    if config.startswith("actenv"):
        use = ["duet.scripts.play", str(gpu_checkpoint), "--episodes", "3"]
    else:
        use = ["duet.scripts.sample", str(gpu_checkpoint), "--num", "100"]
        use += ["--out", str(run_dir / "samples.png"), "--device", "cpu"]
    use_s = duet(*use, log=run_dir / "use.log", threads=args.threads, cpu_only=True)
    return {
        "config": config,
        "precision": precision,
        "gpu_s": gpu_s,
        "gpu_checkpoint": checkpoint_facts(gpu_checkpoint),
        "gpu_losses_logged": losses,
        "gpu_losses_finite": losses_finite,
        "cpu_precision": cpu_precision,
        "cpu_s": cpu_s,
        "cpu_checkpoint": checkpoint_facts(last_checkpoint(run_dir / "cpu")),
        "use_s": use_s,
        "use_output": (run_dir / "use.log").read_text().strip().splitlines()[-3:],
    }


def device_name(accelerator: str) -> str:
    return torch.cuda.get_device_name() if accelerator == "gpu" else "cpu"


def table(results: list[dict], iterations: int, resumed: int) -> str:
    lines = [
        f"| config | precision | GPU fit ({iterations} it) | losses finite | GPU ckpt finite "
        f"| CPU resume to {iterations + resumed} (precision) | CPU ckpt step, finite "
        "| sample/play on CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        gpu, cpu = r["gpu_checkpoint"], r["cpu_checkpoint"]
        lines.append(
            f"| {r['config']} | {r['precision']} | {r['gpu_s']:.0f} s "
            f"| {r['gpu_losses_logged']} values, {'yes' if r['gpu_losses_finite'] else 'NO'} "
            f"| step {gpu['global_step']}, {'yes' if gpu['finite'] else 'NO'} "
            f"| {r['cpu_s']:.0f} s ({r['cpu_precision']}) "
            f"| {cpu['global_step']}, {'yes' if cpu['finite'] else 'NO'} | {r['use_s']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="data/", help="folder holding MNIST/raw/")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--resume-iterations", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=4, help="round trips at once")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--out", type=Path, default=Path("runs/round_trip"))
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--accelerator", default="gpu", help="where to train first (cpu: to try the script)"
    )
    args = parser.parse_args(argv)
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        parser.error("no CUDA device: pass --accelerator cpu to try the script without one")
    pairs = [(config, precision) for config in args.configs for precision in args.precisions]

    def attempt(pair: tuple[str, str]) -> dict:
        try:
            return round_trip(*pair, args)
        except RuntimeError as error:
            return {"config": pair[0], "precision": pair[1], "error": str(error)}

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(attempt, pairs))
    for failed in (r for r in results if "error" in r):
        print(f"## {failed['config']} {failed['precision']} FAILED\n{failed['error']}\n")
    finished = [r for r in results if "error" not in r]
    device = {"device": device_name(args.accelerator), "torch": torch.__version__}
    print(table(finished, args.iterations, args.resume_iterations))
    print(f"trained first on: {device['device']}, torch {device['torch']}")
    if args.json:
        args.json.write_text(json.dumps({**device, "results": results}, indent=2))
    return 1 if len(finished) < len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
