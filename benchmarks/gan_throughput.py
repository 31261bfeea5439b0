"""GAN training throughput: duet's Lightning modules against plain PyTorch loops, side by side.

    python benchmarks/gan_throughput.py --data-dir ../shared/data/mnist-offline \
        [--variants gan lsgan dcgan wgan_gp] [--iterations 300] [--repeats 3] [--threads 2] \
        [--accelerator cpu|gpu] [--precision 32-true|bf16-mixed|16-mixed] \
        [--cases reference lightning fast_loop] [--json FILE]

For each variant, three cases run the same networks, losses, optimizers and batch size (128):
  reference  the specification's loop: torchvision MNIST with transforms.ToTensor() through a
             shuffling DataLoader, 2x - 1 in the loop, zero_grad/backward/step for D then G,
             torch.optim.Adam with PyTorch's default implementation;
  lightning  the project's LightningModule under Trainer.fit with MNISTDataModule, the Trainer's
             default logger on, the progress bar drawn as configs/<variant>.yaml draws it
             (checkpointing off, as the loops do none);
  fast_loop  a plain loop over the same in-memory uint8 batches the DataModule serves and with
             the module's own (fused) Adam, which isolates Lightning's own overhead.
``--precision`` sets the Lightning case's Trainer precision (the plain loops stay in float32);
``--cases`` runs a subset, e.g. only ``lightning`` to compare precisions.
Each case runs in a fresh process (so peak memory is its own), the cases alternate over the
repeats, and iterations per second are timed after ``--warmup`` iterations. One iteration is one
discriminator (critic) step on a batch and, for WGAN-GP, a generator step after every 5th.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from common import configured_progress_bar, peak_rss_mb, run_in_subprocess, write_results

CASES = ("reference", "lightning", "fast_loop")
VARIANTS = ("gan", "lsgan", "dcgan", "wgan_gp")


def module_for(variant: str):
    from duet.lightning_modules import DCGAN, GAN, LSGAN, WGANGP

    return {"gan": GAN, "lsgan": LSGAN, "dcgan": DCGAN, "wgan_gp": WGANGP}[variant]()


def plain_iteration(module, real, optimizers, iteration: int) -> None:
    """One iteration written as the specification wrote it, on the module's own networks."""
    import torch

    from duet.lightning_modules import WGANGP
    from duet.lightning_modules.gan_losses import gradient_penalty

    d_solver, g_solver = optimizers
    generator, discriminator = module.generator, module.discriminator
    noise = module.noise(len(real))
    d_solver.zero_grad()
    fake = generator(noise).detach()
    d_real = discriminator(real)
    d_loss = module.discriminator_loss(d_real, discriminator(fake))
    if isinstance(module, WGANGP):
        mix = torch.rand(len(real), device=real.device)
        d_loss = d_loss + module.penalty_weight * gradient_penalty(discriminator, real, fake, mix)
    d_loss.backward()
    d_solver.step()
    if isinstance(module, WGANGP) and iteration % module.n_critic:
        return
    g_solver.zero_grad()
    fake_logits = discriminator(generator(module.noise(len(real))))
    g_loss = module.generator_loss(d_real.detach(), fake_logits)
    g_loss.backward()
    g_solver.step()


def reference_batches(data_dir: str, device):
    import torchvision.transforms as T
    from torch.utils.data import DataLoader
    from torchvision.datasets import MNIST

    dataset = MNIST(data_dir, train=True, download=False, transform=T.ToTensor())
    loader = DataLoader(dataset, batch_size=128, shuffle=True, drop_last=True)
    while True:
        for x, _ in loader:
            yield 2 * (x.to(device) - 0.5)  # the reference's preprocessing, in the loop


def fast_batches(data_dir: str, device):
    import torch

    from duet.datamodules import MNISTDataModule

    datamodule = MNISTDataModule(data_dir, download=False)
    datamodule.setup("fit")
    images = datamodule.train_set.images.to(device)  # (N, 1, 28, 28) uint8
    while True:
        order = torch.randperm(len(images), device=device)
        for start in range(0, len(images) - 127, 128):
            yield images[order[start : start + 128]].float().div_(127.5).sub_(1.0)


def as_specified(optimizer):
    """The same Adam hyperparameters with PyTorch's default implementation, as the spec used."""
    import torch

    group = optimizer.param_groups[0]
    return torch.optim.Adam(group["params"], lr=group["lr"], betas=group["betas"])


def run_plain(variant: str, batches, total: int, warmup: int, device, literal: bool) -> float:
    """A plain loop; ``literal``: with the specification's optimizer, else the module's own."""
    import torch

    module = module_for(variant).to(device)
    module.rng = torch.Generator(device).manual_seed(0)
    optimizers = module.configure_optimizers()
    if literal:
        optimizers = [as_specified(optimizer) for optimizer in optimizers]
    for iteration, real in enumerate(batches, start=1):
        if iteration == warmup + 1:
            synchronize(device)
            start = time.perf_counter()
        plain_iteration(module, real, optimizers, iteration)
        if iteration == total:
            synchronize(device)
            return (total - warmup) / (time.perf_counter() - start)
    raise RuntimeError("the batch stream ended")


def run_lightning(variant, data_dir, total: int, warmup: int, accelerator, precision) -> float:
    import lightning as L

    from duet.datamodules import MNISTDataModule

    class Timer(L.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.global_step in (warmup, total):
                synchronize(trainer.strategy.root_device)
                setattr(self, f"t{trainer.global_step}", time.perf_counter())

    timer = Timer()
    trainer = L.Trainer(
        accelerator=accelerator,
        precision=precision,
        devices=1,
        max_steps=total,
        max_epochs=-1,
        enable_checkpointing=False,
        limit_val_batches=0,
        callbacks=[timer, configured_progress_bar(variant)],
        default_root_dir="runs/benchmarks",
    )
    datamodule = MNISTDataModule(data_dir, download=False)
    trainer.fit(module_for(variant), datamodule=datamodule)
    return (total - warmup) / (getattr(timer, f"t{total}") - getattr(timer, f"t{warmup}"))


def synchronize(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def run_case(args) -> dict:
    """Runs one case in this process and returns its figures."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    total = args.warmup + args.iterations
    if args.case == "lightning":
        speed = run_lightning(
            args.variant, args.data_dir, total, args.warmup, args.accelerator, args.precision
        )
    else:
        literal = args.case == "reference"
        batches = (reference_batches if literal else fast_batches)(args.data_dir, device)
        speed = run_plain(args.variant, batches, total, args.warmup, device, literal)
    return {"it_per_s": speed, "peak_rss_mb": peak_rss_mb()}


def measure(args, variant: str, case: str) -> dict:
    names = ("data_dir", "iterations", "warmup", "threads", "accelerator", "precision")
    options = {"case": case, "variant": variant, **{name: getattr(args, name) for name in names}}
    return run_in_subprocess(__file__, options)


def table(results: dict) -> str:
    lines = [
        "| variant | reference it/s | Lightning it/s | fast loop it/s | Lightning / reference "
        "| Lightning / fast loop | peak RSS MB (ref / Lightning / fast) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, cases in results.items():
        speed = {case: float("nan") for case in CASES} | {
            case: statistics.median(r["it_per_s"] for r in runs) for case, runs in cases.items()
        }
        rss = {case: float("nan") for case in CASES} | {
            case: max(r["peak_rss_mb"] for r in runs) for case, runs in cases.items()
        }
        lines.append(
            f"| {variant} | {speed['reference']:.1f} | {speed['lightning']:.1f} | "
            f"{speed['fast_loop']:.1f} | {speed['lightning'] / speed['reference']:.2f}× | "
            f"{speed['lightning'] / speed['fast_loop']:.2f}× | "
            f"{rss['reference']:.0f} / {rss['lightning']:.0f} / {rss['fast_loop']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="data/", help="folder holding MNIST/raw/")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--iterations", type=int, default=300, help="timed iterations per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed iterations first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--precision", default="32-true", help="the Lightning case's precision")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args)))
        return 0
    results = {variant: {case: [] for case in args.cases} for variant in args.variants}
    for _ in range(args.repeats):
        for variant in args.variants:
            for case in args.cases:  # alternating, so slow drifts of the machine hit every case
                results[variant][case].append(measure(args, variant, case))
    print(table(results))
    write_results(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
