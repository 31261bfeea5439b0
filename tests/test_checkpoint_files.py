"""Checkpoints that cannot lie: a tensor damaged inside a checkpoint is found before anything is
used, naming the newest intact checkpoint; a write that fails (a full disk) leaves the old file
and no partial one, in one line."""

import errno
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from duet.lightning_modules import checkpoint_files
from duet.lightning_modules.checkpoint_files import (
    DIGEST_KEY,
    CheckpointWriteError,
    DigestCheckpointIO,
    tensor_digest,
)
from duet.lightning_modules.checkpoints import CheckpointError, read_checkpoint
from duet.scripts import sample
from duet.scripts.command import main as duet
from duet.scripts.train import cli_main
from tests.test_wandb_and_checkpoints import gan_args, isolated  # noqa: F401


def damage_a_tensor(path: Path) -> None:
    """64 bytes overwritten in the middle of the largest tensor's storage in the file."""
    with zipfile.ZipFile(path) as archive:
        entries = [e for e in archive.infolist() if "/data/" in e.filename]
        largest = max(entries, key=lambda entry: entry.file_size)
    raw = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", raw[largest.header_offset + 26 :][:4])
    start = largest.header_offset + 30 + name_length + extra_length + largest.file_size // 2
    raw[start : start + 64] = bytes(range(64))
    path.write_bytes(raw)


@pytest.fixture
def gan_run(mnist_dir) -> Path:
    cli_main(gan_args(mnist_dir, "--trainer.max_steps=2"))
    return Path("runs/gan/version_0/checkpoints")


def test_checkpoints_carry_the_digest_of_their_tensors(gan_run):
    checkpoint = torch.load(gan_run / "last.ckpt", weights_only=True)
    assert checkpoint[DIGEST_KEY] == tensor_digest(checkpoint)
    assert not list(gan_run.glob(".*.tmp"))  # nothing left of the atomic write


def test_a_tensor_damaged_in_the_file_is_refused_naming_an_intact_one(gan_run, mnist_dir, capsys):
    intact = gan_run / "step=1.ckpt"
    shutil.copy(gan_run / "last.ckpt", intact)
    intact.touch()  # older than last.ckpt, which is damaged next
    (gan_run / "last.ckpt").touch()
    damage_a_tensor(gan_run / "last.ckpt")
    expected = rf"last\.ckpt is damaged: its tensors differ .* beside it: {intact}\.$"
    with pytest.raises(CheckpointError, match=expected):
        read_checkpoint(gan_run / "last.ckpt")
    assert sample.main([str(gan_run / "last.ckpt"), "--out", "s.png"]) == 2
    assert "is damaged" in capsys.readouterr().err and not Path("s.png").exists()
    resume = ["--ckpt_path=runs/gan/version_0/checkpoints/last.ckpt", "--trainer.max_steps=3"]
    assert duet(gan_args(mnist_dir, *resume)) == 1
    assert (
        "error: Checkpoint runs/gan/version_0/checkpoints/last.ckpt is damaged"
        in capsys.readouterr().err
    )


def test_a_checkpoint_without_a_digest_still_loads(gan_run):
    checkpoint = torch.load(gan_run / "last.ckpt", weights_only=True)
    del checkpoint[DIGEST_KEY]  # as an earlier duet wrote them
    torch.save(checkpoint, gan_run / "old.ckpt")
    assert read_checkpoint(gan_run / "old.ckpt")["global_step"] == 2


def failing_save(monkeypatch, written: int = 1000) -> None:
    """torch.save into a file writes ``written`` bytes, then the disk is full."""
    save = torch.save

    def save_until_full(obj, target, *args, **kwargs):
        if hasattr(target, "write"):
            target.write(b"x" * written)
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(obj, target, *args, **kwargs)

    monkeypatch.setattr(checkpoint_files.torch, "save", save_until_full)


def test_a_full_disk_leaves_the_old_file_and_no_partial_one(gan_run, monkeypatch):
    before = (gan_run / "last.ckpt").read_bytes()
    failing_save(monkeypatch)
    checkpoint = torch.load(gan_run / "last.ckpt", weights_only=True)
    expected = (
        r"last\.ckpt could not be written \(the disk is full\).* is unchanged\. The newest intact"
    )
    with pytest.raises(CheckpointWriteError, match=expected) as error:
        DigestCheckpointIO().save_checkpoint(checkpoint, gan_run / "last.ckpt")
    assert "\n" not in str(error.value)
    assert (gan_run / "last.ckpt").read_bytes() == before
    assert sorted(p.name for p in gan_run.iterdir()) == ["last.ckpt"]


def test_a_run_whose_disk_fills_stops_in_one_line(gan_run, mnist_dir, monkeypatch, capsys):
    before = (gan_run / "last.ckpt").read_bytes()
    failing_save(monkeypatch)
    resume = ["--ckpt_path=last", "--trainer.max_steps=3"]
    assert duet(gan_args(mnist_dir, *resume)) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "could not be written (the disk is full)" in lines[0]
    assert "runs/gan/version_0/checkpoints/last.ckpt" in lines[0]  # the intact one, named
    assert (gan_run / "last.ckpt").read_bytes() == before
    assert not list(Path("runs").rglob(".*.tmp")) and not list(
        Path("runs").rglob("on_exception.ckpt")
    )
