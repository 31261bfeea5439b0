"""State that each process of a multi-process run keeps for itself, carried in checkpoints.

Lightning builds a checkpoint on every process but writes it from process 0 only, and every
process of a resumed run loads that one file. State that differs between processes (replay
buffers, environments, random generators) is therefore gathered into the checkpoint, one entry
per process, and each process takes its own entry back; otherwise every process would continue
from process 0's state and the processes would become copies of each other.

When the number of processes changes between saving and resuming, process r continues from the
saved state of process r where there is one; processes without a saved state keep the fresh,
differently seeded state they were set up with, and saved states without a process are dropped.
One warning says so.
"""

import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_warn

_warned: set[tuple[int, int]] = set()  # (saved, running) process counts already reported


def rank_and_world_size() -> tuple[int, int]:
    """(rank, number of processes) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_processes(local_state) -> list | None:
    """Every process's ``local_state`` in rank order, on process 0; None on the others (they
    write no checkpoint). A collective: every process calls it at the same point, as Lightning
    builds a checkpoint on every process."""
    rank, world_size = rank_and_world_size()
    if world_size == 1:
        return [local_state]
    states = [None] * world_size if rank == 0 else None
    dist.gather_object(local_state, states, dst=0)
    return states


def own_state(saved: dict):
    """This process's entry of the ``"processes"`` list in ``saved`` (as ``gather_processes``
    made it), or None when the checkpoint was saved by fewer processes than this one's rank
    needs. A state saved before per-process entries existed counts as process 0's."""
    states = saved.get("processes", [saved])
    rank, world_size = rank_and_world_size()
    count = len(states)
    if count != world_size and (count, world_size) not in _warned:
        _warned.add((count, world_size))
        if world_size > count:
            fate = f"processes {count}–{world_size - 1} start from fresh, differently seeded state"
        else:
            fate = f"the saved state of processes {world_size}–{count - 1} is dropped"
        rank_zero_warn(
            f"The checkpoint holds the per-process state (replay buffers, environments, random "
            f"generators) of {count} process(es), and this run has {world_size}: each process "
            f"continues from the saved state of the process of its rank, and {fate}."
        )
    return states[rank] if rank < count else None
