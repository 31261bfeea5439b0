"""FID, KID and Inception Score of a GAN checkpoint against the real MNIST test set.

    duet evaluate GAN_CHECKPOINT --classifier CLASSIFIER_CHECKPOINT \\
        [--num N] [--data.data_dir DIR] [--data.dataset NAME] [--json FILE]

Prints the generator's figures and, as the floor a perfect generator would reach, the same
figures for N real training images. Features come from the MNIST classifier
(`duet fit --config mnist_classifier` trains it).
"""

import argparse
import json
import sys
from pathlib import Path

from duet.scripts.errors import run_with_clear_errors

# The datasets in MNIST's format that duet.datamodules.mnist reads (a test keeps the two equal).
DATASET_NAMES = ("MNIST", "FashionMNIST", "KMNIST")
DEFAULT_CLASSIFIER = "checkpoints/mnist_classifier.ckpt"  # as duet.lightning_modules.quality's


def format_table(results: dict[str, dict[str, float]], num: int, num_test: int) -> str:
    lines = [
        f"{num} samples against {num_test} real test images",
        f"{'':<12} {'FID':>9} {'KID mean':>10} {'KID std':>9} {'IS':>7}",
    ]
    for name, m in results.items():
        lines.append(
            f"{name:<12} {m['fid']:>9.3f} {m['kid_mean']:>10.5f} {m['kid_std']:>9.5f} "
            f"{m['is']:>7.3f}"
        )
    generated = results["generator"]
    counts = " ".join(f"{d}:{c}" for d, c in enumerate(generated["class_counts"]))
    lines.append(f"generated digits by class: {counts}")
    lines.append(
        f"rarest digit {generated['rarest_class']} ({generated['rarest_share']:.1%}), commonest "
        f"{generated['commonest_class']} ({generated['commonest_share']:.1%}); even: 10.0% each"
    )
    if "asked_digit_accuracy" in generated:
        worst = generated["worst_asked_digit"]
        lines.append(
            f"classified as the asked digit: {generated['asked_digit_accuracy']:.1%} (worst: "
            f"{worst}, {generated['asked_digit_accuracy_per_digit'][worst]:.1%})"
        )
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None, prog: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="a GAN, LSGAN, DCGAN or WGANGP checkpoint")
    parser.add_argument("--classifier", type=Path, default=Path(DEFAULT_CLASSIFIER))
    parser.add_argument("--num", type=int, default=5_000, help="generated (and real train) images")
    parser.add_argument("--data.data_dir", dest="data_dir", default="data/")
    parser.add_argument(
        "--data.dataset",
        dest="dataset",
        default="MNIST",
        choices=DATASET_NAMES,
        help="the dataset the GAN (and the classifier) were trained on (default MNIST)",
    )
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.num < 2:
        parser.error(f"--num must be at least 2, got {args.num}")
    return args


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_arguments(argv, prog)
    # Imported after parsing, so that --help answers without loading torch and Lightning.
    import torch

    from duet.datamodules import MNISTDataModule
    from duet.datamodules.idx import MNISTFilesError
    from duet.lightning_modules.checkpoints import CheckpointError
    from duet.lightning_modules.quality import ClassifierCheckpointError, load_classifier
    from duet.lightning_modules.sampling import load_generator_module
    from duet.lightning_modules.scoring import evaluate

    try:
        module = load_generator_module(args.checkpoint)
        classifier = load_classifier(args.classifier)
        data = MNISTDataModule(args.data_dir, dataset=args.dataset)
        data.prepare_data()
        data.setup("fit")
        data.setup("test")
    except (CheckpointError, ClassifierCheckpointError, MNISTFilesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    train_images = torch.cat([data.train_set.images, data.val_set.images])
    results = evaluate(
        module, classifier, data.test_set.images, train_images, args.num, args.batch_size, args.seed
    )
    num_real_train = min(args.num, len(train_images))
    if num_real_train < args.num:
        print(f"note: only {num_real_train} real training images for the floor", file=sys.stderr)
    print(format_table(results, args.num, len(data.test_set)))
    if args.json:
        args.json.write_text(
            json.dumps({"num": args.num, "checkpoint": str(args.checkpoint), **results}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_with_clear_errors(main))
