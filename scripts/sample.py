"""Draw samples from a GAN checkpoint.

    duet sample CHECKPOINT --num N --out FILE [--digit D] [--seed S] [--device cpu]

``FILE.pt`` receives a float tensor (N, 1, 28, 28) in [0, 1]; ``FILE.png`` a grid of the samples.
A class-conditional GAN (ConditionalGAN) draws digit D with ``--digit D``; without it, a grid of
ten rows, row d showing digit d (N rounded up to a multiple of 10). Checkpoints trained on a GPU
load on the CPU.
"""

import argparse
import sys
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from duet.lightning_modules import GAN, ConditionalGAN
from duet.lightning_modules.checkpoints import CheckpointError, load_duet_module
from duet.lightning_modules.gan_losses import sample_noise
from duet.scripts.errors import run_with_clear_errors


def load_generator_module(checkpoint_path: Path, device: str = "cpu") -> GAN:
    """The GAN-family module saved in ``checkpoint_path``, in eval mode on ``device``."""
    what = "one of the GAN family (GAN, LSGAN, DCGAN, WGANGP); sample.py needs a generator"
    module, _ = load_duet_module(checkpoint_path, GAN, what, device)
    return module


def draw(module: GAN, num: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """(num, 1, 28, 28) float samples in [0, 1]; ``labels`` (num,) for a conditional GAN."""
    noise = sample_noise(num, module.noise_dim, generator=torch.Generator().manual_seed(seed))
    return ((module.generate(noise, labels) + 1) / 2).clamp_(0, 1).cpu()


def digits_to_draw(module: GAN, num: int, digit: int | None) -> tuple[torch.Tensor | None, int]:
    """(labels or None, grid row length): digit ``digit`` ``num`` times, or for a conditional GAN
    without one, ten rows of ceil(num / 10), one digit a row."""
    conditional = isinstance(module, ConditionalGAN)
    if digit is not None and not conditional:
        raise CheckpointError(
            f"--digit {digit}: this checkpoint's {type(module).__name__} is not class-conditional; "
            "train one with configs/cgan.yaml, or leave --digit out."
        )
    if digit is not None:
        return torch.full((num,), digit), max(1, int(num**0.5))
    if conditional:
        per_digit = -(-num // 10)
        return torch.arange(10).repeat_interleave(per_digit), per_digit
    return None, max(1, int(num**0.5))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--out", type=Path, required=True, help="FILE.pt or FILE.png")
    parser.add_argument("--digit", type=int, choices=range(10), help="the digit to draw (0-9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f"--num must be at least 1, got {args.num}")
    if args.out.suffix not in (".pt", ".png"):
        parser.error(f"--out must end in .pt or .png, got {args.out}")
    try:
        module = load_generator_module(args.checkpoint, args.device)
        labels, row_length = digits_to_draw(module, args.num, args.digit)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    num = args.num if labels is None else len(labels)
    samples = draw(module, num, args.seed, labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".pt":
        torch.save(samples, args.out)
    else:
        save_image(make_grid(samples, nrow=row_length, pad_value=1.0), args.out)
    if args.digit is not None:
        what = f" of digit {args.digit}"
    elif labels is not None:
        what = " (a row per digit, 0-9)"
    else:
        what = ""
    print(f"wrote {num} samples{what} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_with_clear_errors(main))
