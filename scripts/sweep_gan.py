"""Train GAN variants over several seeds; tabulate and plot their sample quality as they learn.

    duet sweep-gan SWEEP.yaml --data.data_dir DIR [--classifier CKPT] [--jobs 2] [--threads 1] \
        [--out runs/sweep] [--docs docs] [--num 5000] [--only NAME ...] [--report-only]

SWEEP.yaml names ``variants`` (each a training config plus CLI overrides), ``seeds``, the
``iterations`` budget and ``every``, the iterations between two checkpoints of the learning curve.
Each (variant, seed) trains with ``scripts/train.py fit`` in its own process (``--threads`` torch
threads, ``--jobs`` at once), keeping a checkpoint every ``every`` iterations; then each
checkpoint is scored as ``duet evaluate`` scores it (``--num`` samples: FID against the test
images in the classifier's features, and the share of each digit). A run that already has its
result.json is not trained again, so an interrupted sweep continues.
Writes ``DOCS/sweep_<sweep name>.md`` (per run: final FID, its rarest and commonest digit's
share, whether every digit is within ``shares`` (default 7–13%), train time; per variant: the
medians) and ``DOCS/sweep_<sweep name>.png`` (FID and rarest-digit share against iterations).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch

from duet.callbacks.episode_plot import plt
from duet.datamodules import MNISTDataModule
from duet.datamodules.in_memory import built
from duet.lightning_modules.quality import load_classifier
from duet.lightning_modules.sampling import load_generator_module
from duet.lightning_modules.scoring import evaluate
from duet.scripts.errors import ToolParser, run_with_clear_errors
from duet.scripts.sweeps import (
    add_sweep_arguments,
    finished_results,
    planned_runs,
    result_file,
    start_afresh,
)

SHARES = (0.07, 0.13)  # what each digit's share of the samples should stay within, by default


def train(variant: dict, seed: int, sweep: dict, args, run_dir: Path) -> float:
    """Trains one run into ``run_dir`` (logs, checkpoints/, curve/step=N.ckpt); its wall time."""
    command = [
        sys.executable,
        "-m",
        "duet.scripts.train",
        "fit",
        f"--config={variant['config']}",
        *variant.get("args", []),
        f"--seed_everything={seed}",
        f"--data.data_dir={args.data_dir}",
        f"--trainer.max_steps={sweep['iterations']}",
        "--trainer.max_epochs=-1",
        "--trainer.logger.class_path=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.init_args.save_dir={run_dir.parent}",
        f"--trainer.logger.init_args.name={run_dir.name}",
        "--trainer.logger.init_args.version=run",
        "--trainer.enable_progress_bar=false",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        f"--trainer.callbacks.dirpath={run_dir / 'run' / 'curve'}",
        "--trainer.callbacks.filename={step}",
        f"--trainer.callbacks.every_n_train_steps={sweep['every']}",
        "--trainer.callbacks.save_top_k=-1",
        "--trainer.callbacks.save_weights_only=true",
        # Lightning tells ModelCheckpoints apart by (monitor, mode, intervals): a mode unlike the
        # config's own periodic checkpoint's lets both run; without a monitor it changes nothing.
        "--trainer.callbacks.mode=max",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=log, check=True)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Judge:
    """What every checkpoint is scored against, loaded once for the whole sweep."""

    classifier: torch.nn.Module
    test_images: torch.Tensor  # uint8 (N, 1, 28, 28)
    train_images: torch.Tensor  # uint8, for the real-data floor


def load_judge(args) -> Judge:
    data = MNISTDataModule(args.data_dir, val_size=0, download=False)
    data.setup("fit")
    data.setup("test")
    classifier = load_classifier(args.classifier)
    test_set, train_set = built(data.test_set, "sweep"), built(data.train_set, "sweep")
    return Judge(classifier, test_set.images, train_set.images)


def score(checkpoint: Path, judge: Judge, num: int) -> dict:
    """``duet evaluate``'s figures for one checkpoint: the generator's and the real floor's FID."""
    module = load_generator_module(checkpoint)
    results = evaluate(
        module, judge.classifier, judge.test_images, judge.train_images, num, 500, seed=0
    )
    return {"generator": results["generator"], "floor": results["real train"]["fid"]}


def run(name: str, variant: dict, seed: int, sweep: dict, args, judge: Judge) -> dict:
    finished = result_file(args.out, name, seed)
    if finished.exists():
        return json.loads(finished.read_text())
    run_dir = start_afresh(args.out, name, seed)
    wall_s = train(variant, seed, sweep, args, run_dir)
    checkpoints = sorted((run_dir / "run" / "curve").glob("step=*.ckpt"), key=step_of)
    scored = {step_of(checkpoint): score(checkpoint, judge, args.num) for checkpoint in checkpoints}
    curve = [(step, f["generator"]["fid"], rarest(f)) for step, f in scored.items()]
    final = scored.get(sweep["iterations"])  # the curve's last checkpoint is the final state
    if final is None:
        final = score(run_dir / "run" / "checkpoints" / "last.ckpt", judge, args.num)
    result = {"variant": name, "seed": seed, "wall_s": wall_s, "curve": curve, **final}
    finished.write_text(json.dumps(result, default=float))
    print(f"{name} seed {seed}: FID {final['generator']['fid']:.1f}", flush=True)
    return result


def step_of(checkpoint: Path) -> int:
    return int(checkpoint.stem.split("=")[1].split("-")[0])


def rarest(figures: dict) -> float:
    return figures["generator"]["rarest_share"]


def shares_within(result: dict, low: float, high: float) -> bool:
    counts = result["generator"]["class_counts"]
    return all(low <= count / sum(counts) <= high for count in counts)


def table(results: list[dict], sweep: dict) -> str:
    low, high = sweep.get("shares", SHARES)
    within = f"all digits {low:.0%}–{high:.0%}"
    lines = [
        f"| variant | seed | FID | rarest digit | commonest digit | {within} | train time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        g = r["generator"]
        lines.append(
            f"| {r['variant']} | {r['seed']} | {g['fid']:.1f} "
            f"| {g['rarest_class']}: {g['rarest_share']:.1%} "
            f"| {g['commonest_class']}: {g['commonest_share']:.1%} "
            f"| {'yes' if shares_within(r, low, high) else 'no'} | {r['wall_s'] / 60:.1f} min |"
        )
    lines += [
        "",
        f"| variant | median FID | FID per seed | worst rarest-digit share | seeds with {within} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in dict.fromkeys(r["variant"] for r in results):
        runs = [r for r in results if r["variant"] == name]
        fids = [r["generator"]["fid"] for r in runs]
        seeds_within = sum(shares_within(r, low, high) for r in runs)
        lines.append(
            f"| {name} | {statistics.median(fids):.1f} | {', '.join(f'{f:.1f}' for f in fids)} "
            f"| {min(rarest(r) for r in runs):.1%} | {seeds_within}/{len(runs)} |"
        )
    return "\n".join(lines)


def plot(results: list[dict], low: float, path: Path) -> None:
    figure, (fid_axes, share_axes) = plt.subplots(1, 2, figsize=(11, 4.5))
    colours: dict[str, str] = {}  # variant -> matplotlib colour
    for r in results:
        steps, fids, shares = zip(*r["curve"], strict=True) if r["curve"] else ((), (), ())
        colour = colours.setdefault(r["variant"], f"C{len(colours)}")
        label = r["variant"] if r["seed"] == results[0]["seed"] else None
        fid_axes.plot(steps, fids, color=colour, lw=1, marker="o", ms=2, label=label)
        share_axes.plot(steps, shares, color=colour, lw=1, marker="o", ms=2)
    fid_axes.axhline(results[0]["floor"], color="grey", lw=0.8, ls=":")
    fid_axes.set(xlabel="iteration", ylabel="FID (5,000 samples; dotted: real data)", yscale="log")
    share_axes.axhline(low, color="grey", lw=0.8, ls=":")
    share_axes.set(xlabel="iteration", ylabel="rarest digit's share of the samples")
    fid_axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = ToolParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_sweep_arguments(parser)
    parser.add_argument("--data.data_dir", dest="data_dir", default="data/")
    parser.add_argument(
        "--classifier", type=Path, default=Path("checkpoints/mnist_classifier.ckpt")
    )
    parser.add_argument("--num", type=int, default=5_000, help="samples scored per checkpoint")
    args = parser.parse_args(argv)
    sweep, variants, jobs = planned_runs(parser, args)
    if args.report_only:
        results = finished_results(args.out, jobs)
    else:
        torch.set_num_threads(args.threads)  # scoring here, beside the training processes
        judge = load_judge(args)

        def train_and_score(job: tuple[str, int]) -> dict:
            name, seed = job
            return run(name, sweep["variants"][name], seed, sweep, args, judge)

        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(train_and_score, jobs))
    if not results:
        parser.error(f"no finished runs of {args.sweep} under {args.out}")
    results.sort(key=lambda r: (variants.index(r["variant"]), r["seed"]))
    args.docs.mkdir(parents=True, exist_ok=True)
    stem = f"sweep_{args.sweep.stem}"
    plot(results, sweep.get("shares", SHARES)[0], args.docs / f"{stem}.png")
    command = " ".join(["duet sweep-gan", *(argv if argv is not None else sys.argv[1:])])
    header = (
        f"# Sweep: {args.sweep}\n\n`{command}` on {date.today()}, {platform.machine()} CPU "
        f"({os.cpu_count()} cores, {args.threads} torch thread(s) per run, {args.jobs} runs at "
        f"once). {sweep['iterations']:,} iterations; {args.num:,} samples scored per checkpoint; "
        f"real training images score FID {results[0]['floor']:.1f}.\n\n![curves]({stem}.png)\n\n"
    )
    (args.docs / f"{stem}.md").write_text(header + table(results, sweep) + "\n")
    print(table(results, sweep))
    return 0


if __name__ == "__main__":
    sys.exit(run_with_clear_errors(main))
