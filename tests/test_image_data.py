"""ImageDataModule: a folder, a tensor file or a torchvision dataset, at one size and number of
channels, in [-1, 1], resumable mid-epoch; one line for a source it cannot use."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from duet.datamodules import ImageDataModule
from duet.datamodules.image_sources import ImageSourceError
from tests.test_mnist_datamodule import record_batches


def write_images(folder: Path, classes=("cats", "dogs"), per_class=6, size=(40, 50), seed=0):
    """Random RGB PNGs (height, width = ``size``) in a sub-folder per class (none: ``()``)."""
    rng = np.random.default_rng(seed)
    for name in classes or ("",):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{index}.png")
    return folder


def loaded(source, **options) -> ImageDataModule:
    data = ImageDataModule(str(source), **{"batch_size": 4, **options})
    data.prepare_data()
    data.setup("fit")
    return data


def test_a_folder_with_class_folders_gives_labels_and_square_images(tmp_path):
    data = loaded(write_images(tmp_path / "pets"), image_size=32)
    assert data.image_shape == (3, 32, 32)
    assert (
        data.train_set.images.shape == (12, 3, 32, 32)
        and data.train_set.images.dtype == torch.uint8
    )
    assert sorted(data.train_set.labels.tolist()) == [0] * 6 + [1] * 6
    images, _ = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
    assert images.shape == (4, 3, 32, 32) and images.min() >= -1 and images.max() <= 1


def test_resizing_keeps_the_centre_and_grey_is_one_channel(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, 10:30] = 255  # the central square is white, the sides black
    Image.fromarray(pixels).save(folder / "a.png")
    data = loaded(folder, image_size=10, channels=1, batch_size=1)
    (image,) = data.train_set.images
    assert image.shape == (1, 10, 10) and image.min() > 200  # the white centre (antialiased)
    assert data.train_set.labels.tolist() == [0]  # no class folders: every label 0


def test_a_tensor_file_of_floats_or_a_dict_with_labels(tmp_path):
    images = torch.rand(8, 1, 16, 16)
    torch.save(images, tmp_path / "grey.pt")
    data = loaded(tmp_path / "grey.pt", image_size=16)
    expected = (images * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    assert torch.equal(data.train_set.images.sort(dim=0).values, expected.sort(dim=0).values)
    labels = torch.arange(8)
    torch.save({"images": (images * 255).to(torch.uint8), "labels": labels}, tmp_path / "d.pt")
    assert sorted(loaded(tmp_path / "d.pt", image_size=8).train_set.labels.tolist()) == list(
        range(8)
    )


def test_a_torchvision_dataset_by_name(tmp_path, monkeypatch):
    class SmallFakeData(torchvision.datasets.FakeData):  # torchvision's offline dataset, smaller
        def __init__(self, **options):
            super().__init__(size=10, image_size=(3, 24, 30), num_classes=3)

    monkeypatch.setattr(torchvision.datasets, "FakeData", SmallFakeData)
    data = loaded("FakeData", image_size=16, data_dir=str(tmp_path))
    assert data.train_set.images.shape == (10, 3, 16, 16)
    assert set(data.train_set.labels.tolist()) <= {0, 1, 2}


def missing(root: Path) -> Path:
    return root / "nowhere"


def empty(root: Path) -> Path:
    (root / "empty").mkdir()
    return root / "empty"


def unreadable(root: Path) -> Path:
    folder = write_images(root / "bad", classes=())
    (folder / "9.png").write_bytes(b"not a png")
    return folder


def not_images(root: Path) -> Path:
    torch.save({"x": 1}, root / "x.pt")
    return root / "x.pt"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (missing, r"source=.*nowhere: no such folder or file, and not the name"),
        (empty, r"empty: no image files"),
        (unreadable, r"cannot read .*9\.png .*remove or replace the file"),
        (not_images, r"x\.pt: expected a tensor of images"),
    ],
    ids=["missing", "empty", "unreadable", "not-images"],
)
def test_a_source_it_cannot_use_is_one_line(tmp_path, make, message):
    with pytest.raises(ImageSourceError, match=message) as error:
        loaded(make(tmp_path))
    assert "\n" not in str(error.value)


def test_holding_out_every_image_is_refused(tmp_path):
    with pytest.raises(ImageSourceError, match=r"val_size=12 holds out all 12 images"):
        loaded(write_images(tmp_path / "pets"), val_size=12)


def run_recorder(source, root: Path, max_steps, ckpt_path=None, every=None):
    data = ImageDataModule(str(source), image_size=16, batch_size=4, shuffle_seed=0)
    return record_batches(data, root, max_steps, ckpt_path, every)


def test_a_fit_resumed_mid_epoch_sees_exactly_the_uninterrupted_batches(tmp_path):
    source = write_images(tmp_path / "pets")  # 12 images: 3 batches an epoch
    uninterrupted = run_recorder(source, tmp_path / "a", max_steps=8)
    first = run_recorder(source, tmp_path / "b", max_steps=4, every=4)  # mid second epoch
    checkpoint = tmp_path / "b" / "ckpt" / "last.ckpt"
    second = run_recorder(source, tmp_path / "c", max_steps=8, ckpt_path=checkpoint)
    assert first + second == uninterrupted and len(set(uninterrupted)) == 8


def test_processes_take_disjoint_equal_shares_of_the_images(tmp_path):
    source = write_images(tmp_path / "pets")  # 12 images: 6 per process, 3 batches of 2

    def batches(rank: int) -> list[torch.Tensor]:
        class TwoProcesses:  # what ImageDataModule reads of a Trainer under DDP
            world_size, global_rank = 2, rank

            class _accelerator_connector:
                use_distributed_sampler = False

        data = ImageDataModule(str(source), image_size=8, batch_size=2, shuffle_seed=0)
        data.trainer = TwoProcesses()
        data.setup("fit")
        return [images for images, _ in data.train_dataloader()]

    shares = [torch.cat(batches(rank)) for rank in (0, 1)]
    assert [len(share) for share in shares] == [6, 6]
    every = torch.cat(shares).flatten(1)
    assert len(torch.unique(every, dim=0)) == 12  # together every image once
