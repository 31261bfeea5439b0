"""Checkpoint files that cannot lie: written whole or not at all (a temporary file, then a
rename), with a digest of every tensor that reading verifies before anything is used."""

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

DIGEST_KEY = "duet_digest"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the file it would have replaced is unchanged."""


def tensor_digest(checkpoint: dict) -> str:
    """A BLAKE2 digest of the dtype, shape and bytes of every tensor (and byte string) in the
    checkpoint, walked in key order; other values are not covered."""
    digest = hashlib.blake2b(digest_size=16)
    _update(digest, {key: value for key, value in checkpoint.items() if key != DIGEST_KEY})
    return digest.hexdigest()


def _update(digest: hashlib.blake2b, value: Any) -> None:
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _update(digest, value[key])
    elif isinstance(value, list | tuple):
        for item in value:
            _update(digest, item)
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, bytes | bytearray):
        digest.update(value)


def digest_matches(checkpoint: dict) -> bool:
    """Whether the checkpoint's tensors are those it was written with (True without a digest:
    a checkpoint of an earlier duet, or written outside the duet command)."""
    return DIGEST_KEY not in checkpoint or checkpoint[DIGEST_KEY] == tensor_digest(checkpoint)


def write_atomically(checkpoint: dict, path: Path) -> None:
    """``torch.save`` into a temporary file beside ``path``, flushed to disk, then renamed over
    it: ``path`` is either the old file or the whole new one. A failed write (a full disk)
    removes the temporary file and raises ``CheckpointWriteError`` naming ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        full = " (the disk is full)" if error.errno == errno.ENOSPC else ""
        kept = "is unchanged" if path.exists() else "was not created"
        raise CheckpointWriteError(
            f"Checkpoint {path} could not be written{full}: {error.strerror or error}; {path.name} "
            f"{kept}. The newest intact checkpoint: {newest_intact(path.parent)}."
        ) from error


def newest_intact(folder: Path, skip: Path | None = None) -> str:
    """The most recent checkpoint that reads and matches its digest, or "none": in ``folder``
    and, for a run's ``checkpoints`` folder, in the other runs of its experiment (a resumed run
    writes into a new one)."""
    found = set(folder.glob("*.ckpt"))
    if folder.name == "checkpoints":
        found |= set(folder.parent.parent.glob("*/checkpoints/*.ckpt"))
    candidates = sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
    for candidate in candidates:
        if candidate == skip:
            continue
        try:
            checkpoint = torch.load(candidate, map_location="cpu", weights_only=True)
        except Exception:
            continue
        if isinstance(checkpoint, dict) and digest_matches(checkpoint):
            return str(candidate)
    return "none"


class DigestCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer with a tensor digest and an atomic write on local disks
    (remote paths are Lightning's as they were)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        checkpoint[DIGEST_KEY] = tensor_digest(checkpoint)
        if "://" in str(path) or storage_options is not None:
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        write_atomically(checkpoint, Path(path))
