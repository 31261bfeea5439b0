"""When one process of a multi-process run dies (killed, out of memory, a crashed node), the
others fail in their next collective with the communication library's error ("Connection reset
by peer", dozens of lines). This names, in one line, which process was lost and the newest
intact checkpoint to resume from, instead."""

import re
import signal
import subprocess
import time
from pathlib import Path

import lightning as L
import torch

from duet.datamodules.lightning_internals import stop_watching_child_processes
from duet.lightning_modules.checkpoint_files import newest_intact
from duet.lightning_modules.checkpoints import model_checkpoint

# What gloo and NCCL say when the other side of a collective is gone.
PEER_GONE = re.compile(
    r"Connection (?:reset|closed) by peer|Broken pipe|NCCL communicator was aborted|"
    r"remote process exited|Socket Timeout|Timed out waiting"
)


class ProcessLost(RuntimeError):
    """Another process of the run died; the message names it and the checkpoint to resume."""


def from_lost_process(exception: BaseException) -> bool:
    """Whether the exception, or one it came from, is a collective that failed because another
    process is gone."""
    seen: set[int] = set()
    cause: BaseException | None = exception
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, RuntimeError) and PEER_GONE.search(str(cause)):
            return True
        if isinstance(cause, torch.distributed.DistError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def ended_children(trainer: L.Trainer, wait: float = 2.0) -> list[str]:
    """The processes this one launched (Lightning's launcher for ``strategy: ddp``) that have
    ended with a failure, e.g. "process 1 (pid 4242, killed by SIGKILL)". A child killed a moment
    ago may not be reaped yet: waits up to ``wait`` seconds for one."""
    children = [
        p
        for p in getattr(trainer.strategy.launcher, "procs", [])
        if isinstance(p, subprocess.Popen)
    ]
    deadline = time.monotonic() + wait
    while children:
        ended = [
            f"process {trainer.global_rank + index} (pid {child.pid}, {how_it_ended(code)})"
            for index, child in enumerate(children, start=1)
            if (code := child.poll()) not in (None, 0)
        ]
        if ended or time.monotonic() > deadline:
            return ended
        time.sleep(0.1)
    return []


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


def lost_process_message(trainer: L.Trainer) -> str:
    """One line: which process was lost, in which iteration, and what to resume from."""
    ended = ended_children(trainer)
    others = [rank for rank in range(trainer.world_size) if rank != trainer.global_rank]
    if ended:
        lost = " and ".join(ended)
    elif len(others) == 1:
        lost = f"process {others[0]}"
    else:
        lost = f"another of the {trainer.world_size} processes"
    callback = model_checkpoint(trainer)
    folder = Path(callback.dirpath) if callback and callback.dirpath else None
    newest = newest_intact(folder) if folder else "none"  # also in the experiment's other runs
    resume = (
        f"resume with --ckpt_path last (the newest intact checkpoint: {newest})"
        if newest != "none"
        else "no checkpoint was written yet, so start the run again"
    )
    return (
        f"{lost} of this {trainer.world_size}-process run was lost during iteration "
        f"{trainer.global_step + 1}, so process {trainer.global_rank} stopped too; {resume}."
    )


class NameLostProcess(L.Callback):
    """Marks an exception caused by a lost process with the one-line message that
    ``scripts/train.py`` raises in its place (``ProcessLost``)."""

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if trainer.world_size > 1 and from_lost_process(exception):
            stop_watching_child_processes()  # it would kill this process before it reports
            vars(exception)["duet_lost_process"] = lost_process_message(trainer)
