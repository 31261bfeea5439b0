"""FID, KID and Inception Score of a GAN checkpoint against real images.

    duet evaluate GAN_CHECKPOINT [--num N] [--json FILE]
        [--classifier CLASSIFIER_CHECKPOINT] [--data.data_dir DIR] [--data.dataset NAME]
        [--data.source SOURCE] [--inception-weights FILE]

Prints the generator's figures and, as the floor a perfect generator would reach, the same
figures for N real images it was not compared with.

MNIST-like checkpoints (1×28×28 images) are scored against the official test images of their
dataset in the features of the MNIST classifier (`duet fit --config mnist_classifier` trains
it), with the share of each digit. Others are scored in the ImageNet Inception network's
features (the `inception` extra; its weights are fetched on first use) against half of the
images they were trained on (the checkpoint's ImageDataModule, or --data.source), the other
half giving the floor.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from duet.scripts.errors import ToolParser

# The datasets in MNIST's format that duet.datamodules.mnist reads (a test keeps the two equal).
DATASET_NAMES = ("MNIST", "FashionMNIST", "KMNIST")
DEFAULT_CLASSIFIER = "checkpoints/mnist_classifier.ckpt"  # as duet.lightning_modules.quality's
MNIST_LIKE = (1, 28, 28)  # images scored in the MNIST classifier's features


def format_table(
    results: dict[str, dict[str, Any]], num: int, num_test: int, digits: bool = True
) -> str:
    """The figures; with ``digits``, the share of each digit the MNIST classifier sees."""
    lines = [
        f"{num} samples against {num_test} real {'test ' if digits else ''}images",
        f"{'':<12} {'FID':>9} {'KID mean':>10} {'KID std':>9} {'IS':>7}",
    ]
    for name, m in results.items():
        lines.append(
            f"{name:<12} {m['fid']:>9.3f} {m['kid_mean']:>10.5f} {m['kid_std']:>9.5f} "
            f"{m['is']:>7.3f}"
        )
    generated = results["generator"]
    if not digits:
        return "\n".join(lines)
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
    parser = ToolParser(
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
    parser.add_argument(
        "--data.source",
        dest="source",
        help="images of a non-MNIST checkpoint (default: the source it was trained on)",
    )
    parser.add_argument("--inception-weights", type=Path, help="the Inception weights file")
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
    from duet.datamodules.idx import MNISTFilesError
    from duet.datamodules.image_sources import ImageSourceError
    from duet.lightning_modules.checkpoints import CheckpointError
    from duet.lightning_modules.inception import FeatureWeightsError
    from duet.lightning_modules.quality import ClassifierCheckpointError
    from duet.lightning_modules.sampling import load_generator
    from duet.lightning_modules.scoring import evaluate

    errors = (
        CheckpointError,
        ClassifierCheckpointError,
        MNISTFilesError,
        ImageSourceError,
        FeatureWeightsError,
    )
    try:
        module, checkpoint = load_generator(args.checkpoint)
        if tuple(module.image_shape) == MNIST_LIKE:
            reference, digits = mnist_reference(args), True
        else:
            reference, digits = image_reference(args, checkpoint), False
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    classifier, prepare, test_images, train_images = reference
    results = evaluate(
        module, classifier, test_images, train_images, args.num, args.batch_size, args.seed, prepare
    )
    num_real_train = min(args.num, len(train_images))
    if num_real_train < args.num:
        print(f"note: only {num_real_train} real images for the floor", file=sys.stderr)
    print(format_table(results, args.num, len(test_images), digits))
    if args.json:
        args.json.write_text(
            json.dumps({"num": args.num, "checkpoint": str(args.checkpoint), **results}, indent=2)
        )
    return 0


def mnist_reference(args: argparse.Namespace) -> tuple:
    """(LeNet, its input, the official test images, the training images) of the dataset."""
    import torch

    from duet.datamodules import MNISTDataModule
    from duet.datamodules.in_memory import built
    from duet.lightning_modules.quality import classifier_input, load_classifier

    classifier = load_classifier(args.classifier)
    data = MNISTDataModule(args.data_dir, dataset=args.dataset)
    data.prepare_data()
    data.setup("fit")
    data.setup("test")
    train_set, val_set, test_set = (
        built(images, "evaluate") for images in (data.train_set, data.val_set, data.test_set)
    )
    train_images = torch.cat([train_set.images, val_set.images])
    return classifier, classifier_input, test_set.images, train_images


def image_reference(args: argparse.Namespace, checkpoint: dict) -> tuple:
    """(Inception, its input, half the images, the other half) of the checkpoint's images."""
    import torch

    from duet.datamodules import ImageDataModule
    from duet.datamodules.image_sources import ImageSourceError
    from duet.datamodules.in_memory import built
    from duet.lightning_modules.inception import inception_features, inception_input

    options = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    options = {k: v for k, v in options.items() if not k.startswith("_")}
    if args.source is not None:
        options["source"] = args.source
    if "source" not in options:
        raise ImageSourceError(
            f"{args.checkpoint} does not record the images it was trained on: give them with "
            "--data.source (a folder, a .pt file or a torchvision dataset name)."
        )
    data = ImageDataModule(**options | {"val_size": 0})
    data.prepare_data()
    data.setup("fit")
    train_set = built(data.train_set, "evaluate")
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(args.seed))
    images = train_set.images[order]
    half = len(images) // 2
    return inception_features(args.inception_weights), inception_input, images[:half], images[half:]
