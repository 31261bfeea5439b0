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

from duet.scripts.errors import ToolParser, run_with_clear_errors


def parse_arguments(argv: list[str] | None, prog: str | None) -> argparse.Namespace:
    parser = ToolParser(
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
    return args


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_arguments(argv, prog)
    # Imported after parsing, so that --help answers without loading torch and Lightning.
    import torch
    from torchvision.utils import make_grid, save_image

    from duet.lightning_modules.checkpoints import CheckpointError
    from duet.lightning_modules.sampling import digits_to_draw, draw, load_generator_module

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
