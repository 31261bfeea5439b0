"""Act/Env agent throughput: duet's Lightning agent against the specification's literal loop.

    python benchmarks/agent_throughput.py [--iterations 300] [--prefill 100000] [--repeats 3] \
        [--threads 2] [--accelerator cpu|gpu] [--collect-steps 2000] [--json FILE]

Training, environment steps per second with the reference's schedule (one CartPole step, then one
training iteration of batch 1,000 with four Adam steps):
  reference  the specification's loop: a Python deque of lists as memory, rates written by a
             loop at episode end, np.random.choice resampled until every rate > 0, arrays
             built by list comprehension, the same networks, losses and four optimizers;
  lightning  ActEnvAgent under Trainer.fit with the GymCollector callback and the replay
             IterableDataset, default logger on, the progress bar as configs/actenv_cartpole.yaml
             draws it (every 50 iterations), checkpointing off;
  lightning_compiled  the same with ActEnvAgent(compile=True) (compiled in the warm-up).
Collection only (random actions, no training), transitions per second for 1, 8 and 64
environments: the GymCollector against raw gymnasium vector stepping of the same environments.
Each case runs in a fresh process; timings start after ``--warmup`` iterations.
"""

import argparse
import json
import math
import statistics
import sys
import time
from collections import deque
from pathlib import Path

from common import configured_progress_bar, peak_rss_mb, run_in_subprocess

CASES = ("reference", "lightning", "lightning_compiled")
NUM_ENVS = (1, 8, 64)


def reference_update(agent, optimizers, batch) -> None:
    """The reference's two-stage update, written as a plain loop would (tensors from lists)."""
    from duet.lightning_modules.actenv_losses import (
        act_loss,
        act_q_loss,
        env_loss,
        env_q_matching_loss,
    )

    prev_action, state, action, next_state, rate = batch
    a_opt, e_opt, a_opt2, e_opt2 = optimizers
    action_logits, act_q = agent.act(state, prev_action)
    next_state_logits, env_q = agent.env(state, action)
    a_loss = act_loss(action_logits, action, act_q, rate)
    e_loss = env_loss(next_state_logits, next_state, env_q, rate)
    a_opt.zero_grad()
    e_opt.zero_grad()
    (a_loss + e_loss).backward()
    a_opt.step()
    e_opt.step()
    _, act_q = agent.act(state, prev_action)
    _, env_q = agent.env(state, action)
    a_opt2.zero_grad()
    e_opt2.zero_grad()
    (act_q_loss(act_q) + env_q_matching_loss(env_q, act_q.detach())).backward()
    a_opt2.step()
    e_opt2.step()


def run_reference(args) -> float:
    import gymnasium as gym
    import numpy as np
    import torch

    from duet.lightning_modules import ActEnvAgent
    from duet.lightning_modules.actenv import trainable

    env = gym.make("CartPole-v1")
    agent = ActEnvAgent(state_size=4, action_size=2)
    # The reference's four Adam(1e-4) with PyTorch's default implementation (duet's are fused).
    act_params, env_params = trainable(agent.act), trainable(agent.env)
    optimizers = [
        torch.optim.Adam(params, lr=1e-4)
        for params in (act_params, env_params, act_params, env_params)
    ]
    memory = deque(maxlen=100_000)
    state, _ = env.reset(seed=0)
    prev_action, episode_length, episode_return = 0, 0, 0.0

    def env_step(action):
        nonlocal state, prev_action, episode_length, episode_return
        next_state, reward, terminated, truncated, _ = env.step(action)
        memory.append([prev_action, state, action, next_state, reward, terminated, truncated, -1.0])
        episode_length, episode_return = episode_length + 1, episode_return + reward
        prev_action, state = action, next_state
        if terminated or truncated:
            for back in range(1, episode_length + 1):  # rate the episode's transitions
                memory[-back][7] = episode_return / 500
            state, _ = env.reset()
            prev_action, episode_length, episode_return = 0, 0, 0.0

    for _ in range(args.prefill):
        env_step(env.action_space.sample())
    total = args.warmup + args.iterations
    for iteration in range(1, total + 1):
        if iteration == args.warmup + 1:
            start = time.perf_counter()
        explore_p = 0.01 + 0.99 * math.exp(-1e-4 * (iteration - 1))  # the reference's schedule
        if np.random.rand() < explore_p:
            action = env.action_space.sample()
        else:
            with torch.no_grad():
                states = torch.as_tensor(state, dtype=torch.float32)[None]
                logits, _ = agent.act(states, torch.tensor([prev_action]))
            action = int(logits.argmax())
        env_step(action)
        while True:  # the reference's resampling until every rate is positive
            index = np.random.choice(np.arange(len(memory)), size=args.batch_size, replace=False)
            batch = [memory[i] for i in index]
            if all(each[7] > 0 for each in batch):
                break
        arrays = (
            torch.tensor(np.array([each[0] for each in batch])),
            torch.tensor(np.array([each[1] for each in batch])),
            torch.tensor(np.array([each[2] for each in batch])),
            torch.tensor(np.array([each[3] for each in batch])),
            torch.tensor(np.array([each[7] for each in batch]), dtype=torch.float32),
        )
        reference_update(agent, optimizers, arrays)
    return args.iterations / (time.perf_counter() - start)


def run_lightning(args, compile: bool) -> float:
    import lightning as L

    from duet.callbacks import GymCollector, StoppingRules
    from duet.datamodules import ExperienceDataModule
    from duet.lightning_modules import ActEnvAgent

    total = args.warmup + args.iterations

    class Timer(L.Callback):
        def on_train_batch_end(self, trainer, *rest) -> None:
            if trainer.global_step in (args.warmup, total):
                setattr(self, f"t{trainer.global_step}", time.perf_counter())

    timer = Timer()
    no_stop = StoppingRules(mean_return=None, max_episodes=None)  # the iterations end the run
    collector = GymCollector(prefill_steps=args.prefill, stopping=no_stop)
    trainer = L.Trainer(
        accelerator=args.accelerator,
        devices=1,
        max_steps=total,
        max_epochs=-1,
        enable_checkpointing=False,
        callbacks=[collector, timer, configured_progress_bar("actenv_cartpole")],
        default_root_dir="runs/benchmarks",
    )
    agent = ActEnvAgent(compile=compile)
    trainer.fit(agent, datamodule=ExperienceDataModule(batch_size=args.batch_size))
    return args.iterations / (getattr(timer, f"t{total}") - getattr(timer, f"t{args.warmup}"))


def run_collection(args) -> dict:
    """Transitions per second, collector and raw vector stepping, for each number of envs.

    The two alternate in chunks of a tenth of ``--collect-steps`` vector steps each, so that a
    drift of the machine's speed within the measurement weighs on both alike."""
    from types import SimpleNamespace

    import gymnasium as gym
    import numpy as np

    from duet.callbacks import GymCollector
    from duet.datamodules import ExperienceDataModule
    from duet.lightning_modules import ActEnvAgent

    figures = {}
    chunk = max(1, args.collect_steps // 10)
    for num_envs in NUM_ENVS:
        rng = np.random.default_rng(0)
        envs = gym.make_vec("CartPole-v1", num_envs=num_envs)
        envs.reset(seed=0)
        collector = GymCollector(num_envs=num_envs, prefill_steps=0)
        data = ExperienceDataModule(capacity=100_000, batch_size=1_000)
        trainer = SimpleNamespace(
            datamodule=data, global_rank=0, loggers=[], log_dir=None, default_root_dir="."
        )
        collector.setup(trainer, ActEnvAgent(), "fit")
        raw_seconds = collector_seconds = 0.0
        stored = 0
        for _ in range(0, args.collect_steps, chunk):
            start = time.perf_counter()
            for _ in range(chunk):
                envs.step(rng.integers(2, size=num_envs))
            raw_seconds += time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(chunk):
                stored += collector.step(collector.rng.integers(2, size=num_envs), training=False)
            collector_seconds += time.perf_counter() - start
        steps = chunk * len(range(0, args.collect_steps, chunk))
        figures[num_envs] = {
            "raw": num_envs * steps / raw_seconds,
            "collector": stored / collector_seconds,
        }
    return figures


def run_case(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.case == "collection":
        return {"collection": run_collection(args), "peak_rss_mb": peak_rss_mb()}
    if args.case == "reference":
        speed = run_reference(args)
    else:
        speed = run_lightning(args, compile=args.case == "lightning_compiled")
    return {"steps_per_s": speed, "peak_rss_mb": peak_rss_mb()}


def tables(results: dict) -> str:
    cases = [case for case in CASES if case in results]
    speed = {case: statistics.median(r["steps_per_s"] for r in results[case]) for case in cases}
    rss = {case: max(r["peak_rss_mb"] for r in results[case]) for case in cases}
    lines = [
        "| case | env steps/s (training) | vs reference | peak RSS MB |",
        "| --- | --- | --- | --- |",
        *(
            f"| {case} | {speed[case]:.1f} | {speed[case] / speed['reference']:.2f}× "
            f"| {rss[case]:.0f} |"
            for case in cases
        ),
        "",
        "| environments | raw gymnasium transitions/s | collector transitions/s | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for num_envs in NUM_ENVS:
        runs = [r["collection"][str(num_envs)] for r in results["collection"]]
        raw = statistics.median(r["raw"] for r in runs)
        collected = statistics.median(r["collector"] for r in runs)
        lines.append(f"| {num_envs} | {raw:,.0f} | {collected:,.0f} | {collected / raw:.2f}× |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=300, help="timed training iterations")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--prefill", type=int, default=100_000, help="random steps first (reference)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=1_000, help="transitions a batch (reference)"
    )
    parser.add_argument("--collect-steps", type=int, default=2_000, help="vector steps per count")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=CASES[1:],
        default=list(CASES[1:]),
        help="the cases beside the reference loop (default: all)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--case", choices=(*CASES, "collection"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args)))
        return 0
    names = (
        "iterations",
        "warmup",
        "prefill",
        "batch_size",
        "collect_steps",
        "threads",
        "accelerator",
    )
    options = {name: getattr(args, name) for name in names}
    results = {case: [] for case in ("reference", *args.cases, "collection")}
    for _ in range(args.repeats):
        for case in results:  # alternating, so slow drifts of the machine hit every case
            results[case].append(run_in_subprocess(__file__, {"case": case, **options}))
    print(tables(results))
    if args.json:
        args.json.write_text(json.dumps({"args": options, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
