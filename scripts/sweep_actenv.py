"""Train Act/Env variants over several seeds; tabulate and plot how each learns.

    duet sweep SWEEP.yaml [--jobs 2] [--threads 1] [--out runs/sweep] \
        [--docs docs] [--episodes 100] [--only NAME ...] [--report-only]

SWEEP.yaml names ``variants`` (each a training config plus CLI overrides), ``seeds``, the
``env_steps`` budget and the return ``threshold``. Each (variant, seed) trains with
``scripts/train.py fit`` in its own process (``--threads`` torch threads, ``--jobs`` at once),
then its final checkpoint and its best-evaluated one (``best-*.ckpt``, when the config keeps one)
play ``--episodes`` greedy episodes as scripts/play.py does. A run
that already has its result.json is not trained again, so an interrupted sweep continues. The
first variant's seeds run first, then the others seed by seed.
Writes ``DOCS/sweep_<sweep name>.md`` (a table: steps until the greedy evaluation first reached
the threshold, final greedy return) and a learning-curve plot per variant,
``DOCS/sweep_<sweep name>_<variant>.png``. ``--report-only`` trains nothing and reports the runs
that finished.
"""

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np

from duet.callbacks.episode_plot import plt
from duet.callbacks.playing import load_agent, make_env, play, trained_environment
from duet.scripts.errors import ToolParser, run_with_clear_errors
from duet.scripts.sweeps import (
    add_sweep_arguments,
    finished_results,
    planned_runs,
    result_file,
    start_afresh,
)


def train(variant: dict, seed: int, env_steps: int, run_dir: Path, threads: int) -> float:
    """Trains one run into ``run_dir`` (logs, checkpoints/last.ckpt); returns the wall time."""
    command = [
        sys.executable,
        "-m",
        "duet.scripts.train",
        "fit",
        f"--config={variant['config']}",
        *variant.get("args", []),
        f"--seed_everything={seed}",
        f"--collector.seed={seed}",  # the collector's environments
        f"--collector.stopping.max_env_steps={env_steps}",
        "--trainer.logger.class_path=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.init_args.save_dir={run_dir.parent}",
        f"--trainer.logger.init_args.name={run_dir.name}",
        "--trainer.logger.init_args.version=run",
        "--trainer.enable_progress_bar=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=log, check=True)
    return time.perf_counter() - start


def read_curves(metrics_csv: Path) -> dict[str, list[tuple[float, float]]]:
    """(env steps, value) of the greedy evaluations and of the training 100-episode mean."""
    curves: dict[str, list[tuple[float, float]]] = {"greedy": [], "training": []}
    with open(metrics_csv) as file:
        for row in csv.DictReader(file):
            if row.get("eval/greedy_mean_return"):
                curves["greedy"].append(
                    (float(row["eval/env_steps"]), float(row["eval/greedy_mean_return"]))
                )
            if row.get("episode/env_steps") and row.get("episode/mean_return_100"):
                curves["training"].append(
                    (float(row["episode/env_steps"]), float(row["episode/mean_return_100"]))
                )
    return curves


def greedy_play(checkpoint_path: Path, episodes: int) -> tuple[np.ndarray, int]:
    """Returns of ``episodes`` greedy episodes, exactly as scripts/play.py plays them, and the
    checkpoint's training iteration."""
    agent, checkpoint = load_agent(checkpoint_path)
    env_id, env_kwargs = trained_environment(checkpoint)
    if env_id is None:
        raise ValueError(f"{checkpoint_path} has no GymCollector: the sweep trains with one.")
    env = make_env(env_id, None, env_kwargs)
    returns = np.array(play(agent, env, episodes, seed=0))
    env.close()
    return returns, checkpoint["global_step"]


def run(name: str, variant: dict, seed: int, sweep: dict, args) -> dict:
    finished = result_file(args.out, name, seed)
    if finished.exists():
        return json.loads(finished.read_text())
    run_dir = start_afresh(args.out, name, seed) / "run"
    wall_s = train(variant, seed, sweep["env_steps"], run_dir.parent, args.threads)
    curves = read_curves(run_dir / "metrics.csv")
    reached = [steps for steps, mean in curves["greedy"] if mean >= sweep["threshold"]]
    result = {"variant": name, "seed": seed, "wall_s": wall_s, "curves": curves}
    result["steps_to_threshold"] = reached[0] if reached else None
    checkpoints = run_dir / "checkpoints"
    best = sorted(checkpoints.glob("best-*.ckpt"))
    for kind, path in (("final", checkpoints / "last.ckpt"), ("best", best[-1] if best else None)):
        if path is not None:
            returns, result[f"{kind}_step"] = greedy_play(path, args.episodes)
            result[f"{kind}_mean"], result[f"{kind}_std"] = returns.mean(), returns.std()
            result[f"{kind}_min"] = returns.min()
    finished.write_text(json.dumps(result, default=float))
    print(f"{name} seed {seed}: final greedy {result['final_mean']:.1f}", flush=True)
    return result


def table(results: list[dict], sweep: dict, episodes: int) -> str:
    threshold = sweep["threshold"]

    def played(r: dict, kind: str) -> str:
        if f"{kind}_mean" not in r:
            return "—"
        return (
            f"{r[f'{kind}_mean']:.1f} ± {r[f'{kind}_std']:.1f} (min {r[f'{kind}_min']:g}) "
            f"at {r[f'{kind}_step']:,}"
        )

    lines = [
        f"| variant | seed | env steps to greedy ≥ {threshold:g} (evaluation) "
        f"| final checkpoint: greedy return over {episodes} episodes, at iteration "
        f"| lowest evaluation from then on | best-evaluated checkpoint: same | train time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        steps = f"{r['steps_to_threshold']:,.0f}" if r["steps_to_threshold"] else "never"
        lowest = lowest_after_reaching(r["curves"]["greedy"], threshold)
        lines.append(
            f"| {r['variant']} | {r['seed']} | {steps} | {played(r, 'final')} "
            f"| {'—' if lowest is None else f'{lowest:.1f}'} "
            f"| {played(r, 'best')} | {r['wall_s'] / 60:.1f} min |"
        )
    lines += [
        "",
        f"| variant | seeds ≥ {threshold:g}, final | seeds ≥ {threshold:g}, best-evaluated "
        f"| seeds whose evaluations stay ≥ {threshold:g} once reached | mean final greedy return |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in dict.fromkeys(r["variant"] for r in results):
        runs = [r for r in results if r["variant"] == name]
        final = sum(r["final_mean"] >= threshold for r in runs)
        best = sum(r.get("best_mean", -np.inf) >= threshold for r in runs)
        steady = sum(
            (lowest_after_reaching(r["curves"]["greedy"], threshold) or -np.inf) >= threshold
            for r in runs
        )
        mean = np.mean([r["final_mean"] for r in runs])
        lines.append(
            f"| {name} | {final}/{len(runs)} | {best}/{len(runs)} | {steady}/{len(runs)} "
            f"| {mean:.1f} |"
        )
    return "\n".join(lines)


def lowest_after_reaching(greedy: list, threshold: float) -> float | None:
    """The lowest greedy evaluation from the first one that reached ``threshold`` on (None if
    none did): at least ``threshold`` when the policy never fell back once solved."""
    means = [mean for _, mean in greedy]
    first = next((i for i, mean in enumerate(means) if mean >= threshold), None)
    return None if first is None else min(means[first:])


def plot(name: str, results: list[dict], sweep: dict, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for r in results:
        greedy = np.array(r["curves"]["greedy"]).reshape(-1, 2)  # none when the budget ends
        training = np.array(r["curves"]["training"]).reshape(-1, 2)  # before an evaluation
        (line,) = axes.plot(*greedy.T, marker="o", ms=3, label=f"seed {r['seed']}: greedy")
        if len(training):
            axes.plot(*training.T, ls="--", lw=1, color=line.get_color(), label="training mean")
    axes.axhline(sweep["threshold"], color="grey", lw=0.8, ls=":")
    axes.set(xlabel="environment steps (prefill included)", ylabel="return", title=name)
    axes.legend(fontsize="small", ncols=2, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = ToolParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_sweep_arguments(parser)
    parser.add_argument("--episodes", type=int, default=100, help="greedy episodes at the end")
    args = parser.parse_args(argv)
    sweep, variants, jobs = planned_runs(parser, args)
    if args.report_only:
        results = finished_results(args.out, jobs)
    else:
        with ThreadPoolExecutor(args.jobs) as pool:
            work = [(name, sweep["variants"][name], seed, sweep, args) for name, seed in jobs]
            results = list(pool.map(lambda job: run(*job), work))
    variants = [name for name in variants if any(r["variant"] == name for r in results)]
    args.docs.mkdir(parents=True, exist_ok=True)
    stem = f"sweep_{args.sweep.stem}"
    for name in variants:
        plot(
            name,
            [r for r in results if r["variant"] == name],
            sweep,
            args.docs / f"{stem}_{name}.png",
        )
    command = " ".join(["duet sweep", *(argv or sys.argv[1:])])
    header = (
        f"# Sweep: {args.sweep}\n\n`{command}` on {date.today()}, {platform.machine()} "
        f"CPU ({os.cpu_count()} cores, {args.threads} torch thread(s) per run, {args.jobs} "
        f"runs at once). Budget {sweep['env_steps']:,} environment steps including prefill.\n\n"
    )
    (args.docs / f"{stem}.md").write_text(header + table(results, sweep, args.episodes) + "\n")
    print(table(results, sweep, args.episodes))
    return 0


if __name__ == "__main__":
    sys.exit(run_with_clear_errors(main))
