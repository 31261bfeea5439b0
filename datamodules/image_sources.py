"""Images read from a folder, a tensor file or a torchvision dataset, as uint8 ``(N, C, S, S)``
(resized so the shorter side is S, then centre-cropped) with int64 labels ``(N,)``."""

import inspect
from pathlib import Path

import torch
import torchvision
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import functional as F

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageSourceError(RuntimeError):
    """A source of images that is missing, empty or unreadable."""


def fit_to_size(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, channels, size, size): grey made RGB or RGB made grey,
    the shorter side resized to ``size`` (antialiased), the centre cropped."""
    if images.shape[1] == 1 and channels == 3:
        images = images.expand(-1, 3, -1, -1)
    elif images.shape[1] == 3 and channels == 1:
        images = F.rgb_to_grayscale(images)
    if tuple(images.shape[-2:]) != (size, size):
        images = F.center_crop(F.resize(images, size, antialias=True), [size, size])
    return images.contiguous()


def image_files(folder: Path) -> tuple[list[Path], list[int]]:
    """The image files directly in ``folder`` (label 0) or, when it has sub-folders with
    images, in each sub-folder (labels 0, 1, … by sorted sub-folder name)."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = classes or [folder]
    files, labels = [], []
    for label, group in enumerate(groups):
        found = sorted(p for p in group.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    return files, labels


def read_folder(folder: Path, size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    files, labels = image_files(folder)
    if not files:
        raise ImageSourceError(
            f"ImageDataModule source={folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in "
            "it or in its class sub-folders."
        )
    mode = "L" if channels == 1 else "RGB"
    images = []
    for path in files:
        try:
            with Image.open(path) as image:
                pixels = F.pil_to_tensor(image.convert(mode))  # (C, H, W) uint8
        except (OSError, UnidentifiedImageError) as error:
            raise ImageSourceError(
                f"ImageDataModule source={folder}: cannot read {path} ({error}); remove or "
                "replace the file."
            ) from error
        images.append(fit_to_size(pixels[None], size, channels))
    return torch.cat(images), torch.tensor(labels, dtype=torch.int64)


def read_tensor_file(path: Path, size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``.pt`` file holding images (N, C, H, W) or (N, H, W), uint8 in [0, 255] or float in
    [0, 1], or a dict of them under "images" with optional int "labels" (N,)."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ImageSourceError(
            f"ImageDataModule source={path}: cannot read it as a tensor file ({error})."
        ) from error
    images = content.get("images") if isinstance(content, dict) else content
    labels = content.get("labels") if isinstance(content, dict) else None
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4) or not len(images):
        raise ImageSourceError(
            f"ImageDataModule source={path}: expected a tensor of images (N, C, H, W) or "
            "(N, H, W), or a dict holding one under 'images'."
        )
    if images.dim() == 3:
        images = images[:, None]
    if images.is_floating_point():
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    if images.shape[1] not in (1, 3):
        raise ImageSourceError(
            f"ImageDataModule source={path}: images of {images.shape[1]} channels; 1 or 3 are read."
        )
    labels = torch.zeros(len(images), dtype=torch.int64) if labels is None else labels.long()
    return fit_to_size(images.to(torch.uint8), size, channels), labels


def torchvision_dataset(name: str, root: Path, download: bool):
    """torchvision's dataset ``name`` (its training part), downloaded into ``root`` when asked."""
    dataset_class = getattr(torchvision.datasets, name)
    parameters = inspect.signature(dataset_class).parameters
    wanted = {"root": str(root), "download": download, "train": True, "split": "train"}
    return dataset_class(**{key: value for key, value in wanted.items() if key in parameters})


def read_torchvision(name: str, root: Path, size: int, channels: int, download: bool):
    try:
        dataset = torchvision_dataset(name, root, download)
    except (RuntimeError, OSError) as error:  # torchvision's "Dataset not found", a failed fetch
        raise ImageSourceError(
            f"ImageDataModule source={name}: torchvision could not provide it under {root} "
            f"({error}); set data_dir to a folder holding it, or allow download."
        ) from error
    mode = "L" if channels == 1 else "RGB"
    images, labels = [], []
    for image, target in dataset:
        pixels = F.pil_to_tensor(image.convert(mode)) if isinstance(image, Image.Image) else image
        images.append(fit_to_size(pixels[None], size, channels))
        labels.append(target if isinstance(target, int) else 0)
    return torch.cat(images), torch.tensor(labels, dtype=torch.int64)


def is_torchvision_dataset(name: str) -> bool:
    candidate = getattr(torchvision.datasets, name, None)
    return isinstance(candidate, type) and issubclass(candidate, torchvision.datasets.VisionDataset)
