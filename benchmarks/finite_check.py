"""What the non-finite loss check costs per training iteration, on one process and on two.

    python benchmarks/finite_check.py [--iterations 20000] [--losses 2] [--device cpu]

Cases, each timed over the same scalar losses:
- ``every_iteration``: the check duet used to run at every iteration: stack the losses, test
  them, read the answer on the host (a sync), and under DDP agree on it (an all-reduce).
- ``guard``: ``FiniteGuard.after_iteration`` on an iteration the loggers do not write: the
  losses are added to a running sum on the device; no sync, no collective.
With ``--processes 2`` both run in two gloo processes of one thread each. Prints a JSON line of
microseconds per iteration.
"""

import argparse
import json
import os
import time
from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from duet.lightning_modules.finite_guard import FiniteGuard


class Strategy:
    """The part of a Lightning strategy the check calls: an all-reduce of the decision."""

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        if not dist.is_initialized():
            return decision
        flag = torch.tensor(int(decision))
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag)


def check_every_iteration(module, losses: dict) -> None:
    finite = bool(torch.isfinite(torch.stack(list(losses.values()))).all())
    if not module.trainer.strategy.reduce_boolean_decision(finite, all=True):
        raise FloatingPointError(losses)


def time_cases(iterations: int, num_losses: int, device: str) -> dict[str, float]:
    logger_connector = SimpleNamespace(should_update_logs=False)
    trainer = SimpleNamespace(strategy=Strategy(), _logger_connector=logger_connector)
    module = SimpleNamespace(trainer=trainer)
    guard = FiniteGuard()
    losses = {f"loss{i}": torch.rand((), device=device) for i in range(num_losses)}
    cases = {
        "every_iteration": lambda: check_every_iteration(module, losses),
        "guard": lambda: guard.after_iteration(module, losses),
    }
    timings = {}
    for name, case in cases.items():
        for _ in range(iterations // 10):  # warm-up
            case()
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iterations):
            case()
        if device == "cuda":
            torch.cuda.synchronize()
        timings[name] = (time.perf_counter() - start) / iterations * 1e6
    return timings


def worker(rank: int, world_size: int, args, results) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(args.port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    results[rank] = time_cases(args.iterations, args.losses, args.device)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--losses", type=int, default=2, help="losses per iteration (GAN: 2)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--port", type=int, default=29533)
    args = parser.parse_args()
    if args.processes == 1:
        torch.set_num_threads(1)
        timings = time_cases(args.iterations, args.losses, args.device)
    else:
        results = mp.Manager().dict()
        mp.spawn(worker, args=(args.processes, args, results), nprocs=args.processes)
        timings = results[0]
    print(json.dumps({"processes": args.processes, "device": args.device, "us": timings}))


if __name__ == "__main__":
    main()
