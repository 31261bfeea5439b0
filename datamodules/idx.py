"""Checks of the IDX files of MNIST (and of the datasets in its format) before torchvision parses
them, so a bad file gets a clear error. Functions take the ``raw`` folder that holds the files."""

import math
from pathlib import Path

# file name -> (IDX magic number, number of dimensions); the magic's third byte 0x08 means uint8.
MNIST_FILES = {
    "train-images-idx3-ubyte": (0x0803, 3),
    "train-labels-idx1-ubyte": (0x0801, 1),
    "t10k-images-idx3-ubyte": (0x0803, 3),
    "t10k-labels-idx1-ubyte": (0x0801, 1),
}


class MNISTFilesError(RuntimeError):
    """MNIST files are missing, unreadable or malformed."""


def raw_folder(data_dir: str | Path, dataset: str = "MNIST") -> Path:
    """The folder torchvision's dataset class ``dataset`` reads: ``<data_dir>/<dataset>/raw``."""
    return Path(data_dir) / dataset / "raw"


def missing_files(folder: Path) -> list[str]:
    return [name for name in MNIST_FILES if not (folder / name).is_file()]


def check_idx_file(path: Path, magic: int, ndim: int) -> None:
    """Raise MNISTFilesError unless ``path`` is a complete uint8 IDX file of ``ndim`` dimensions."""
    data = path.read_bytes()
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise MNISTFilesError(
            f"{path} is truncated: {len(data)} bytes, shorter than its {header_size}-byte IDX "
            "header. Delete it and download the dataset again."
        )
    found_magic = int.from_bytes(data[:4], "big")
    if found_magic != magic:
        raise MNISTFilesError(
            f"{path} is not a uint8 IDX file of {ndim} dimension(s): magic number "
            f"0x{found_magic:08x}, expected 0x{magic:08x}. Delete it and download the dataset "
            "again."
        )
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header_size + math.prod(dims)
    if len(data) != expected:
        raise MNISTFilesError(
            f"{path} is corrupt or truncated: its header declares shape {tuple(dims)}, which needs "
            f"{expected} bytes, but the file has {len(data)}. Delete it and download the dataset "
            "again."
        )


def check_mnist_files(folder: Path) -> None:
    """Check all four IDX files in ``folder``; raise MNISTFilesError naming the first bad one."""
    for name, (magic, ndim) in MNIST_FILES.items():
        check_idx_file(folder / name, magic, ndim)
    check_counts_agree(folder)


def check_counts_agree(folder: Path) -> None:
    """Raise MNISTFilesError if an image file and its label file hold different numbers of items."""
    for prefix in ("train", "t10k"):
        images, labels = (
            folder / f"{prefix}-images-idx3-ubyte",
            folder / f"{prefix}-labels-idx1-ubyte",
        )
        num_images, num_labels = _first_dim(images), _first_dim(labels)
        if num_images != num_labels:
            raise MNISTFilesError(
                f"{images} holds {num_images} images but {labels} holds {num_labels} labels. "
                "Replace both files with a matching pair."
            )


def _first_dim(path: Path) -> int:
    with path.open("rb") as file:
        return int.from_bytes(file.read(8)[4:], "big")
