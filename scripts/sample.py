"""Draw samples from a GAN checkpoint.

    duet sample CHECKPOINT --num N --out FILE [--seed S] [--device cpu]

``FILE.pt`` receives a float tensor (N, 1, 28, 28) in [0, 1]; ``FILE.png`` a grid of the samples.
Checkpoints trained on a GPU load on the CPU.
"""

import argparse
import sys
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from duet.lightning_modules import GAN
from duet.lightning_modules.checkpoints import CheckpointError, load_duet_module
from duet.lightning_modules.gan_losses import sample_noise
from duet.scripts.errors import run_with_clear_errors


def load_generator_module(checkpoint_path: Path, device: str = "cpu") -> GAN:
    """The GAN-family module saved in ``checkpoint_path``, in eval mode on ``device``."""
    what = "one of the GAN family (GAN, LSGAN, DCGAN, WGANGP); sample.py needs a generator"
    module, _ = load_duet_module(checkpoint_path, GAN, what, device)
    return module


def draw(module: GAN, num: int, seed: int) -> torch.Tensor:
    """(num, 1, 28, 28) float samples in [0, 1]."""
    noise = sample_noise(num, module.noise_dim, generator=torch.Generator().manual_seed(seed))
    return ((module.generate(noise) + 1) / 2).clamp_(0, 1).cpu()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--out", type=Path, required=True, help="FILE.pt or FILE.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f"--num must be at least 1, got {args.num}")
    if args.out.suffix not in (".pt", ".png"):
        parser.error(f"--out must end in .pt or .png, got {args.out}")
    try:
        samples = draw(load_generator_module(args.checkpoint, args.device), args.num, args.seed)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".pt":
        torch.save(samples, args.out)
    else:
        save_image(make_grid(samples, nrow=max(1, int(args.num**0.5)), pad_value=1.0), args.out)
    print(f"wrote {args.num} samples to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_with_clear_errors(main))
