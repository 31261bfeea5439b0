"""Where the Lightning agent's training iteration spends its time: a cProfile of ``--iterations``
reference-schedule iterations (batch 1,000, four Adam steps, one CartPole step each).

    python benchmarks/profile_agent.py [--iterations 2000] [--prefill 5000] [--threads 2] [--top 25]
"""

import argparse
import cProfile
import pstats
import sys
import tempfile

import lightning as L
import torch

from duet.callbacks import GymCollector, StoppingRules
from duet.datamodules import ExperienceDataModule
from duet.lightning_modules import ActEnvAgent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=2_000)
    parser.add_argument("--prefill", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    no_stop = StoppingRules(mean_return=None, max_episodes=None)  # --iterations ends the run
    collector = GymCollector(prefill_steps=args.prefill, stopping=no_stop)
    trainer = L.Trainer(
        max_steps=args.iterations,
        max_epochs=-1,
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[collector],
        default_root_dir=tempfile.mkdtemp(),  # where the collector's episode plot goes
    )
    profile = cProfile.Profile()
    profile.runcall(trainer.fit, ActEnvAgent(), datamodule=ExperienceDataModule())
    stats = pstats.Stats(profile).sort_stats("cumulative")
    stats.print_stats(r"actenv|replay|gym_collector|optim|backward|linear|episodes", args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
