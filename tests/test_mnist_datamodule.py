import os
import shutil

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from duet.datamodules import MNISTDataModule
from duet.datamodules.idx import MNISTFilesError
from duet.datamodules.in_memory import to_unit_range
from tests.conftest import write_idx, write_mnist


def fit_datamodule(data_dir, **kwargs) -> MNISTDataModule:
    datamodule = MNISTDataModule(str(data_dir), download=False, **kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def test_batches_have_the_seed_shape_range_and_size(mnist_dir):
    datamodule = fit_datamodule(mnist_dir, batch_size=32, val_size=60)
    images, labels = next(iter(datamodule.train_dataloader()))
    images, labels = datamodule.on_after_batch_transfer((images, labels), 0)
    assert images.shape == (32, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (32,)
    assert images.min() >= -1 and images.max() <= 1
    assert len(datamodule.train_set) == 240 and len(datamodule.val_set) == 60
    assert len(datamodule.train_dataloader()) == 240 // 32  # drop_last


def test_scaling_is_two_x_minus_one():
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8)
    expected = 2 * (pixels.double() / 255) - 1
    torch.testing.assert_close(to_unit_range(pixels).double(), expected, atol=1e-6, rtol=0)


def test_split_larger_than_the_data_falls_back_to_the_full_mnist_ratio(mnist_dir):
    with pytest.warns(UserWarning, match="1/12"):
        datamodule = fit_datamodule(mnist_dir)  # default val_size 5,000 > 300 images
    assert len(datamodule.val_set) == 300 * 5_000 // 60_000 == 25
    assert len(datamodule.train_set) == 275


def test_split_and_order_are_seeded(mnist_dir):
    first = fit_datamodule(mnist_dir, batch_size=16, val_size=50, shuffle_seed=3)
    second = fit_datamodule(mnist_dir, batch_size=16, val_size=50, shuffle_seed=3)
    other = fit_datamodule(mnist_dir, batch_size=16, val_size=50, shuffle_seed=4)
    assert torch.equal(first.val_set.labels, second.val_set.labels)
    batches = [torch.cat([b[1] for b in dm.train_dataloader()]) for dm in (first, second, other)]
    assert torch.equal(batches[0], batches[1])
    assert not torch.equal(batches[0], batches[2])


def test_loader_resumes_mid_epoch_from_its_state(mnist_dir):
    datamodule = fit_datamodule(mnist_dir, batch_size=16, val_size=50, shuffle_seed=0)
    loader = datamodule.train_dataloader()
    iterator = iter(loader)
    for _ in range(5):
        next(iterator)
    state = loader.state_dict()
    rest = [labels for _, labels in iterator]

    resumed = fit_datamodule(mnist_dir, batch_size=16, val_size=50, shuffle_seed=0)
    resumed_loader = resumed.train_dataloader()
    resumed_loader.load_state_dict(state)
    resumed_rest = [labels for _, labels in resumed_loader]
    assert len(resumed_rest) == len(rest) == 250 // 16 - 5
    assert all(torch.equal(a, b) for a, b in zip(rest, resumed_rest, strict=True))


class BatchRecorder(L.LightningModule):
    """Records a fingerprint of every training batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[float] = []

    def training_step(self, batch, batch_idx):
        images, labels = batch
        self.seen.append(float(images.sum() + 1000 * labels.sum()))
        return self.weight * images.mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def run_recorder(mnist_dir, tmp_path, max_steps, ckpt_path=None, every=None):
    datamodule = MNISTDataModule(str(mnist_dir), batch_size=16, val_size=50, shuffle_seed=0)
    return record_batches(datamodule, tmp_path, max_steps, ckpt_path, every)


def record_batches(datamodule, tmp_path, max_steps, ckpt_path=None, every=None) -> list[float]:
    """A fingerprint of every batch a fit on ``datamodule`` trains on (a checkpoint every
    ``every`` iterations, from ``ckpt_path`` if given)."""
    model = BatchRecorder()
    callbacks = [ModelCheckpoint(tmp_path / "ckpt", every_n_train_steps=every, save_last=True)]
    trainer = L.Trainer(
        max_steps=max_steps,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks if every else [],
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return model.seen


def test_trainer_resumed_mid_epoch_sees_exactly_the_uninterrupted_batches(mnist_dir, tmp_path):
    # 15 batches per epoch: stop at 20 (mid second epoch), resume to 40 (mid third epoch).
    uninterrupted = run_recorder(mnist_dir, tmp_path / "a", max_steps=40)
    first_part = run_recorder(mnist_dir, tmp_path / "b", max_steps=20, every=20)
    checkpoint = tmp_path / "b" / "ckpt" / "last.ckpt"
    second_part = run_recorder(mnist_dir, tmp_path / "c", max_steps=40, ckpt_path=checkpoint)
    assert first_part + second_part == uninterrupted


def test_missing_files_without_download_name_folder_files_and_flag(tmp_path):
    datamodule = MNISTDataModule(str(tmp_path / "nowhere"), download=False)
    with pytest.raises(MNISTFilesError) as error:
        datamodule.prepare_data()
    message = str(error.value)
    assert str((tmp_path / "nowhere" / "MNIST" / "raw").resolve()) in message
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in message
    assert "--data.data_dir" in message
    assert not (tmp_path / "nowhere").exists()  # nothing touched


def test_failed_download_gives_the_same_clear_error(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torchvision.datasets.mnist.MNIST.download", no_network)
    with pytest.raises(MNISTFilesError, match="download failed: network is unreachable"):
        MNISTDataModule(str(tmp_path / "data"), download=True).prepare_data()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_data_dir_is_reported_before_downloading(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(MNISTFilesError, match="not writable"):
        MNISTDataModule(str(locked / "data"), download=True).prepare_data()


def test_unwritable_check_uses_access_rights(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(MNISTFilesError, match="is not writable") as error:
        MNISTDataModule(str(tmp_path / "data"), download=True).prepare_data()
    assert "--data.data_dir" in str(error.value)


def test_truncated_file_is_named(mnist_dir):
    images = mnist_dir / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(MNISTFilesError, match="train-images-idx3-ubyte is corrupt or truncated"):
        fit_datamodule(mnist_dir)


def test_wrong_magic_number_is_named(mnist_dir):
    labels = mnist_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write_idx(labels, torch.zeros(10, 3, dtype=torch.uint8))  # a 2-d file where 1-d is expected
    with pytest.raises(MNISTFilesError, match="t10k-labels-idx1-ubyte is not a uint8 IDX file"):
        fit_datamodule(mnist_dir)


def test_image_and_label_counts_must_agree(tmp_path):
    root = write_mnist(tmp_path / "a", num_train=100)
    other = write_mnist(tmp_path / "b", num_train=90)
    shutil.copy(other / "MNIST/raw/train-labels-idx1-ubyte", root / "MNIST/raw")
    with pytest.raises(MNISTFilesError, match=r"holds 100 images but .* holds 90 labels"):
        fit_datamodule(root)


def test_test_stage_uses_the_official_test_files(mnist_dir):
    datamodule = MNISTDataModule(str(mnist_dir), download=False)
    datamodule.setup("test")
    batches = list(datamodule.test_dataloader())
    assert sum(len(labels) for _, labels in batches) == 100  # no drop_last for evaluation


def test_processes_take_disjoint_equal_shares_of_one_permutation():
    from duet.datamodules import ShuffledBatchSampler

    shards = [
        torch.cat(list(ShuffledBatchSampler(103, 10, True, seed=4, num_replicas=3, rank=r)))
        for r in range(3)
    ]
    assert [len(s) for s in shards] == [30, 30, 30]  # 34 each, 3 full batches of 10
    everything = torch.cat(shards)
    assert len(everything.unique()) == 90  # no index on two processes
    alone = torch.randperm(103, generator=torch.Generator().manual_seed(4))
    assert torch.equal(shards[1][:10], alone[1::3][:10])


def test_every_epoch_of_a_fit_trains_on_all_its_batches(mnist_dir, tmp_path):
    # 250 training images in batches of 16: 15 batches an epoch, a fresh order each epoch.
    datamodule = MNISTDataModule(str(mnist_dir), batch_size=16, val_size=50, shuffle_seed=0)
    model = BatchRecorder()
    trainer = L.Trainer(
        max_epochs=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step == 3 * 15
    epochs = [model.seen[i * 15 : (i + 1) * 15] for i in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]


@pytest.mark.parametrize(("saved_replicas", "replicas"), [(2, 1), (1, 2), (2, 4)])
def test_a_position_saved_by_other_processes_continues_after_the_same_images(
    saved_replicas, replicas
):
    """k batches on each of the saved processes cover the permutation's first k·B·saved indices;
    the new processes serve the rest of that epoch, each index at most once."""
    from duet.datamodules import ShuffledBatchSampler

    def sampler(num_replicas, rank):
        return ShuffledBatchSampler(96, 4, True, seed=3, num_replicas=num_replicas, rank=rank)

    seen = []
    for rank in range(saved_replicas):
        saved = sampler(saved_replicas, rank)
        batches = iter(saved)
        seen += [next(batches) for _ in range(4)]
    state = saved.state_dict()  # the same on every process
    rest = []
    for rank in range(replicas):
        resumed = sampler(replicas, rank)
        resumed.load_state_dict(state)
        assert resumed.batches_done == 4 * saved_replicas // replicas
        rest += list(resumed)
    served = torch.cat(seen + rest)
    permutation = torch.randperm(96, generator=torch.Generator().manual_seed(3))
    assert sorted(served.tolist()) == list(range(96))  # nothing skipped, nothing repeated
    first = permutation[: 16 * saved_replicas]
    assert torch.equal(torch.cat(seen).sort().values, first.sort().values)


@pytest.mark.parametrize("dataset", ["FashionMNIST", "KMNIST"])
def test_a_dataset_in_mnists_format_is_read_from_its_own_folder(dataset, tmp_path):
    write_mnist(tmp_path, seed=0)  # MNIST beside it, other images
    write_mnist(tmp_path, num_train=120, num_test=40, seed=5, dataset=dataset)
    datamodule = MNISTDataModule(str(tmp_path), dataset=dataset, val_size=20, download=False)
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    assert (len(datamodule.train_set), len(datamodule.val_set)) == (100, 20)
    expected = write_mnist(tmp_path / "again", num_train=120, num_test=40, seed=5)
    expected_module = MNISTDataModule(str(expected), val_size=20, download=False)
    expected_module.setup("test")
    assert torch.equal(datamodule.test_set.images, expected_module.test_set.images)


def test_a_missing_dataset_names_its_folder_and_an_unknown_one_is_refused(tmp_path):
    write_mnist(tmp_path)  # MNIST is there, Fashion-MNIST is not
    with pytest.raises(MNISTFilesError, match=r"FashionMNIST is not in .*FashionMNIST/raw"):
        MNISTDataModule(str(tmp_path), dataset="FashionMNIST", download=False).prepare_data()
    with pytest.raises(ValueError, match=r"dataset='EMNIST' is not one of MNIST, FashionMNIST"):
        MNISTDataModule(str(tmp_path), dataset="EMNIST")
