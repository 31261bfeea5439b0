"""Time to solve CartPole-v1: duet's solved Act/Env config against Stable-Baselines3's DQN with
rl-baselines3-zoo's tuned CartPole-v1 hyperparameters, trained on one machine in one run.

    pip install -e ".[sb3]"
    python benchmarks/agent_vs_sb3.py [--seeds 0 1 2] [--env-steps 50000] [--eval-every 500] \
        [--eval-episodes 50] [--final-episodes 100] [--threshold 475] [--threads 1] \
        [--config configs/actenv_cartpole_solved.yaml] [--compile] [--duet-set KEY=VALUE ...] \
        [--learners duet sb3] [--json FILE] [--plot FILE]

Each (learner, seed) trains in a fresh process; the two learners alternate seed by seed, the
first of each pair alternating too. One evaluation protocol for both: every ``--eval-every``
environment steps (random prefill / learning_starts included), ``--eval-episodes`` greedy
episodes on seeds 10,000 + i, played by ``callbacks.greedy_rollout.greedy_returns``. The clock
runs from the start of learning (duet: the collector's prefill; SB3: ``learn``'s first step) to
the end of the budget, less the evaluations: imports, building the learner and evaluating are
not counted. Reported per run: environment steps and training seconds until the first
evaluation whose mean reaches ``--threshold``; the greedy return over ``--final-episodes``
episodes (seeds 0, 1, ...) after ``--env-steps``; all training seconds.

``--duet-set KEY=VALUE`` (repeatable) overrides one key of duet's config as ``duet fit
--KEY=VALUE`` would, e.g. ``--duet-set collector.num_envs=4``; with
``--learners duet`` only duet trains, to compare such settings with each other.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import CONFIGS, run_in_subprocess, write_results

ENV_ID = "CartPole-v1"
EVALUATION_SEED = 10_000
# rl-baselines3-zoo's hyperparams/dqn.yml for CartPole-v1 (its n_timesteps is 5e4).
ZOO_DQN = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1_000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}
LEARNERS = ("duet", "sb3")


class EvaluationClock:
    """Greedy evaluations every ``every`` environment steps, timed apart from training.

    ``start()`` when learning starts; ``after_step(env_steps, policy)`` after each environment
    step evaluates once each time ``env_steps`` reaches the next multiple of ``every``. ``curve``
    holds (environment steps, training seconds so far, greedy mean return) per evaluation."""

    def __init__(self, every: int, episodes: int, now=time.perf_counter):
        self.every, self.episodes, self.now = every, episodes, now
        self.started = self.evaluating = 0.0
        self.next_at = every
        self.curve: list[tuple[int, float, float]] = []

    def start(self) -> None:
        self.started = self.now()

    def training_seconds(self) -> float:
        return self.now() - self.started - self.evaluating

    def after_step(self, env_steps: int, policy) -> None:
        if env_steps < self.next_at:
            return
        from duet.callbacks.greedy_rollout import greedy_returns

        begun = self.now()
        trained = begun - self.started - self.evaluating
        returns = greedy_returns(policy, ENV_ID, self.episodes, EVALUATION_SEED)
        self.curve.append((env_steps, trained, float(returns.mean())))
        self.evaluating += self.now() - begun
        self.next_at = (env_steps // self.every + 1) * self.every


class GreedyDQN:
    """An SB3 DQN seen as duet's agent by greedy_returns: the argmax of its Q-network."""

    def __init__(self, model):
        self.model = model

    def greedy_actions(self, states, prev_actions):
        import torch

        actions, _ = self.model.predict(states.numpy(), deterministic=True)
        return torch.as_tensor(actions)


def duet_cli(args, logs: str):
    """The solved config as ``duet fit`` builds it from ``args``, not yet fitted, logging under
    ``logs``."""
    from duet.scripts.train import cli_main

    return cli_main(
        [
            f"--config={args.config}",
            f"--seed_everything={args.seed}",
            f"--collector.seed={args.seed}",  # the collector's environments
            f"--collector.stopping.max_env_steps={args.env_steps}",
            f"--trainer.logger.init_args.save_dir={logs}",
            "--trainer.enable_progress_bar=false",
            f"--model.init_args.compile={args.compile}",
            *(f"--{setting}" for setting in args.duet_set),
        ],
        run=False,
    )


def train_duet(args, clock: EvaluationClock):
    """The solved config, its own evaluation and checkpoints left out; returns the trained
    agent. Its CSV log and episode plot are not read and go when it returns."""
    import lightning as L
    from lightning.pytorch.callbacks import Checkpoint

    from duet.callbacks import GreedyEvaluation, GymCollector, SaveFinalCheckpoint

    with tempfile.TemporaryDirectory(prefix="agent_vs_sb3_") as logs:
        cli = duet_cli(args, logs)
        collector = next(c for c in cli.trainer.callbacks if isinstance(c, GymCollector))

        class Clocked(L.Callback):
            def on_train_start(self, trainer, pl_module) -> None:  # before the collector's prefill
                clock.start()

            def on_train_batch_end(self, trainer, pl_module, *rest) -> None:
                clock.after_step(collector.env_steps, pl_module)  # stepped at the batch's start

        left_out = (GreedyEvaluation, Checkpoint, SaveFinalCheckpoint)
        kept = [c for c in cli.trainer.callbacks if not isinstance(c, left_out)]
        cli.trainer.callbacks[:] = [Clocked(), *kept]
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return cli.model


def train_sb3(args, clock: EvaluationClock):
    """Zoo-tuned DQN for ``args.env_steps`` steps; returns it as a greedy policy."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger

    model = DQN("MlpPolicy", ENV_ID, seed=args.seed, device="cpu", **ZOO_DQN)
    model.set_logger(Logger(folder=None, output_formats=[]))  # else an empty /tmp/SB3-* folder
    policy = GreedyDQN(model)

    class Clocked(BaseCallback):
        def _on_training_start(self) -> None:
            clock.start()

        def _on_step(self) -> bool:
            clock.after_step(self.num_timesteps, policy)
            return True

    model.learn(total_timesteps=args.env_steps, callback=Clocked())
    return policy


def run_case(args) -> dict:
    import torch

    from duet.callbacks.greedy_rollout import greedy_returns

    torch.set_num_threads(args.threads)
    clock = EvaluationClock(args.eval_every, args.eval_episodes)
    policy = (train_duet if args.case == "duet" else train_sb3)(args, clock)
    trained = clock.training_seconds()
    final = greedy_returns(policy, ENV_ID, args.final_episodes, seed=0)
    solved = next((point for point in clock.curve if point[2] >= args.threshold), None)
    return {
        "curve": clock.curve,
        "solved_env_steps": solved and solved[0],
        "solved_seconds": solved and solved[1],
        "train_seconds": trained,
        "final_mean": float(final.mean()),
        "final_std": float(final.std()),
    }


def median_or_none(values: list) -> float | None:
    """The median, counting a run that never reached the threshold as infinitely slow."""
    ranked = [float("inf") if v is None else v for v in values]
    middle = statistics.median(ranked)
    return None if middle == float("inf") else middle


def table(results: dict, args) -> str:
    def shown(value, digits: int) -> str:
        return "never" if value is None else f"{value:,.{digits}f}"

    lines = [
        f"| learner | seed | env steps to ≥ {args.threshold:g} "
        f"| training s to ≥ {args.threshold:g} "
        f"| final greedy return ({args.final_episodes} episodes) | training s in all |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for learner in results:
        for seed, r in zip(args.seeds, results[learner], strict=True):
            lines.append(
                f"| {learner} | {seed} | {shown(r['solved_env_steps'], 0)} "
                f"| {shown(r['solved_seconds'], 1)} "
                f"| {r['final_mean']:.1f} ± {r['final_std']:.1f} | {r['train_seconds']:.1f} |"
            )
    medians = {
        learner: {
            key: median_or_none([r[key] for r in results[learner]])
            for key in ("solved_env_steps", "solved_seconds", "final_mean")
        }
        for learner in results
    }
    for learner in results:
        m = medians[learner]
        lines.append(
            f"| {learner} | median | {shown(m['solved_env_steps'], 0)} "
            f"| {shown(m['solved_seconds'], 1)} | {shown(m['final_mean'], 1)} | |"
        )
    if set(medians) != set(LEARNERS):
        return "\n".join(lines)
    duet, sb3 = medians["duet"], medians["sb3"]
    for key, what in (("solved_env_steps", "environment steps"), ("solved_seconds", "seconds")):
        if duet[key] is not None and sb3[key] is not None:
            lines.append(
                f"\nduet/SB3 median {what} to ≥ {args.threshold:g}: {duet[key] / sb3[key]:.3f}"
            )
    return "\n".join(lines)


def plot(results: dict, args) -> None:
    from duet.callbacks.episode_plot import plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    colors = {"duet": "tab:blue", "sb3": "tab:orange"}
    for learner, runs in results.items():
        for seed, r in zip(args.seeds, runs, strict=True):
            steps = [point[0] for point in r["curve"]]
            means = [point[2] for point in r["curve"]]
            axes.plot(
                steps, means, color=colors[learner], lw=1, alpha=0.8, label=f"{learner} seed {seed}"
            )
    axes.axhline(args.threshold, color="grey", ls=":", lw=1)
    axes.set_xlabel("environment steps")
    axes.set_ylabel(f"greedy mean return ({args.eval_episodes} episodes)")
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(args.plot, dpi=110)
    plt.close(figure)


def config_setting(text: str) -> str:
    """``KEY=VALUE`` as given, or a one-line error naming what is wrong."""
    key, equals, _ = text.partition("=")
    if not equals or not key or key.startswith("-"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KEY=VALUE: write e.g. data.init_args.batch_size=64 (no leading --)"
        )
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--env-steps", type=int, default=50_000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--final-episodes", type=int, default=100)
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", default=str(CONFIGS / "actenv_cartpole_solved.yaml"))
    parser.add_argument(
        "--compile",
        nargs="?",
        const="true",
        default="false",
        choices=("true", "false"),
        help="duet's agent with compile=true (its compilation is clocked as training)",
    )
    parser.add_argument(
        "--duet-set",
        action="append",
        default=[],
        type=config_setting,
        metavar="KEY=VALUE",
        help="override a key of duet's config, e.g. data.init_args.batch_size=64 (repeatable)",
    )
    parser.add_argument("--learners", nargs="+", choices=LEARNERS, default=list(LEARNERS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--case", choices=LEARNERS, help=argparse.SUPPRESS)  # internal
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)  # internal, with --case
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.case:
        import json

        print(json.dumps(run_case(args)))
        return
    shared = {
        name: getattr(args, name)
        for name in (
            *("env_steps", "eval_every", "eval_episodes", "final_episodes"),
            *("threshold", "threads", "config", "compile", "duet_set"),
        )
    }
    learners = tuple(learner for learner in LEARNERS if learner in args.learners)
    results = {learner: [] for learner in learners}
    for index, seed in enumerate(args.seeds):
        order = learners if index % 2 == 0 else learners[::-1]
        for learner in order:
            result = run_in_subprocess(__file__, shared | {"case": learner, "seed": seed})
            results[learner].append(result)
            print(f"{learner} seed {seed}: {result['solved_env_steps']} steps", file=sys.stderr)
    print(table(results, args))
    write_results(args, results)
    if args.plot:
        plot(results, args)


if __name__ == "__main__":
    main()
