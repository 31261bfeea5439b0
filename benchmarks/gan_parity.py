"""Parity of duet's reference GAN training with a plain PyTorch loop, by sample quality.

    python benchmarks/gan_parity.py --data-dir DIR --classifier checkpoints/mnist_classifier.ckpt \
        [--variants gan lsgan dcgan wgan_gp] [--iterations 3750] [--seeds 0 1 2] [--jobs 2] \
        [--threads 1] [--num 5000] [--accelerator cpu|gpu] [--json FILE]

For each variant and seed, three runs of the same networks, losses and hyperparameters for the
same number of iterations, each in its own process, then ``duet evaluate``'s figures (FID against
the test images in the classifier's features, and the digit shares) of 5,000 samples:
  plain      the specification's loop (benchmarks/gan_throughput.py): every training image,
             torchvision's shuffling DataLoader, PyTorch's default Adam;
  duet       Trainer.fit with MNISTDataModule's defaults, which hold 1/12 of a small training
             set out for validation (as the GAN configs did before they set ``val_size: 0``);
  duet_all   the same, with no validation hold-out (``val_size=0``), as the configs train now:
             it separates what the smaller training set does from what the training step does.
"""

import argparse
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import run_in_subprocess, write_results
from gan_throughput import (
    VARIANTS,
    as_specified,
    module_for,
    plain_iteration,
    reference_batches,
)

CASES = ("plain", "duet", "duet_all")


def train_plain(variant: str, data_dir: str, iterations: int, seed: int, accelerator: str):
    import torch

    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    torch.manual_seed(seed)
    module = module_for(variant).to(device)
    module.rng = torch.Generator(device).manual_seed(seed)
    optimizers = [as_specified(optimizer) for optimizer in module.configure_optimizers()]
    for iteration, real in enumerate(reference_batches(data_dir, device), start=1):
        plain_iteration(module, real, optimizers, iteration)
        if iteration == iterations:
            return module
    raise RuntimeError("the batch stream ended")


def train_duet(
    variant: str, data_dir: str, iterations: int, seed: int, val_size: int | None, accelerator: str
):
    import lightning as L

    from duet.datamodules import MNISTDataModule

    L.seed_everything(seed, verbose=False)
    module = module_for(variant)
    options = {} if val_size is None else {"val_size": val_size}
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        max_steps=iterations,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=MNISTDataModule(data_dir, download=False, **options))
    return module


def run_case(args) -> dict:
    """Trains one (variant, seed, case) in this process and returns its sample figures."""
    import torch

    from duet.datamodules import MNISTDataModule
    from duet.lightning_modules.quality import load_classifier
    from duet.lightning_modules.scoring import evaluate

    torch.set_num_threads(args.threads)
    if args.case == "plain":
        module = train_plain(
            args.variant, args.data_dir, args.iterations, args.seed, args.accelerator
        )
    else:
        val_size = 0 if args.case == "duet_all" else None
        module = train_duet(
            args.variant, args.data_dir, args.iterations, args.seed, val_size, args.accelerator
        )
    module.cpu()  # scored on the CPU, beside the classifier
    data = MNISTDataModule(args.data_dir, download=False)
    data.setup("fit")
    data.setup("test")
    train_images = torch.cat([data.train_set.images, data.val_set.images])
    classifier = load_classifier(args.classifier)
    results = evaluate(
        module, classifier, data.test_set.images, train_images, args.num, 500, seed=0
    )
    keep = ("fid", "rarest_share", "rarest_class", "commonest_share", "class_counts")
    return {name: results["generator"][name] for name in keep}


def table(results: list[dict]) -> str:
    lines = [
        "| variant | case | FID per seed | FID median | rarest digit share per seed |",
        "| --- | --- | --- | --- | --- |",
    ]
    for variant in dict.fromkeys(r["variant"] for r in results):
        for case in CASES:
            runs = [r for r in results if (r["variant"], r["case"]) == (variant, case)]
            if not runs:
                continue
            fids = ", ".join(f"{r['fid']:.1f}" for r in runs)
            shares = ", ".join(f"{r['rarest_share']:.1%} ({r['rarest_class']})" for r in runs)
            median = statistics.median(r["fid"] for r in runs)
            lines.append(f"| {variant} | {case} | {fids} | {median:.1f} | {shares} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="data/", help="folder holding MNIST/raw/")
    parser.add_argument("--classifier", default="checkpoints/mnist_classifier.ckpt")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["gan"])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--iterations", type=int, default=3750)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num", type=int, default=5000, help="samples evaluated per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu", help="to train on")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args)))
        return 0
    names = ("data_dir", "classifier", "iterations", "num", "threads", "accelerator")
    shared = {name: getattr(args, name) for name in names}
    runs = [
        {"variant": variant, "seed": seed, "case": case}
        for variant in args.variants
        for seed in args.seeds
        for case in args.cases
    ]
    with ThreadPoolExecutor(args.jobs) as pool:
        figures = list(pool.map(lambda run: run_in_subprocess(__file__, shared | run), runs))
    results = [run | figure for run, figure in zip(runs, figures, strict=True)]
    print(table(results))
    write_results(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
