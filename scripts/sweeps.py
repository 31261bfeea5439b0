"""What the two sweep tools share: their common options, the order of their runs, and reading
back the runs that finished."""

import argparse
import json
import shutil
from pathlib import Path

import yaml

from duet.scripts.configs import ConfigError, resolve_config


def sweep_file(value: str) -> Path:
    """The sweep file ``value`` names (a path, or a sweep config shipped with duet)."""
    try:
        return Path(resolve_config(value))
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", type=sweep_file)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--only", nargs="+", help="run just these variants")
    parser.add_argument("--report-only", action="store_true", help="report finished runs only")


def planned_runs(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[dict, list[str], list[tuple[str, int]]]:
    """(the sweep file's contents, the variants asked for, the (variant, seed) runs in order).

    The first variant's seeds run first, then the others seed by seed: a sweep stopped early has
    the main result and every variant at the first seeds."""
    sweep = yaml.safe_load(args.sweep.read_text())
    unknown = set(args.only or []) - set(sweep["variants"])
    if unknown:
        parser.error(f"{args.sweep} has no variant {sorted(unknown)}: {list(sweep['variants'])}")
    variants = [name for name in sweep["variants"] if not args.only or name in args.only]
    runs = sorted(
        ((name, seed) for name in variants for seed in sweep["seeds"]),
        key=lambda run: (run[0] != variants[0], run[1]),
    )
    return sweep, variants, runs


def result_file(out: Path, name: str, seed: int) -> Path:
    return out / name / f"seed_{seed}" / "run" / "result.json"


def finished_results(out: Path, runs: list[tuple[str, int]]) -> list[dict]:
    """The results of the runs that finished (wrote their result.json), in the runs' order."""
    files = [result_file(out, name, seed) for name, seed in runs]
    return [json.loads(file.read_text()) for file in files if file.exists()]


def start_afresh(out: Path, name: str, seed: int) -> Path:
    """The empty folder ``out/name/seed_<seed>`` for a run to train into. A run that was stopped
    before writing its result.json left checkpoints there (``last.ckpt``, ``best-*.ckpt``) which
    the new run's would sit beside as ``*-v1.ckpt``, and the result would be read from the old
    ones; they are removed."""
    run_dir = out / name / f"seed_{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    return run_dir
