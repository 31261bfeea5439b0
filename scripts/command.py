"""The installed ``duet`` command: every capability under one name.

    duet fit|validate|test|predict --config FILE ...   LightningCLI (scripts/train.py)
    duet sample|evaluate|play|configs|sweep|sweep-gan   the tools, with their own options
    duet --help | --version

Each tool is the script it wraps (``duet sample`` is ``python scripts/sample.py``), imported only
when asked for, so ``duet sample --help`` does not pay for LightningCLI's start-up.
"""

import importlib
import sys
from dataclasses import dataclass
from importlib.metadata import version

from duet.scripts.errors import run_with_clear_errors


@dataclass(frozen=True)
class Command:
    module: str  # a module of duet.scripts with main(argv) -> int
    summary: str


TRAINING = {
    "fit": "train a model: duet fit --config gan (duet configs lists the configs)",
    "validate": "score the MNIST classifier on validation data (GANs: evaluate; agents: play)",
    "test": "score the MNIST classifier on test data (GANs: evaluate; agents: play)",
    "predict": "not used by duet's modules (GANs: sample; agents: play)",
}
TOOLS = {
    "sample": Command("duet.scripts.sample", "draw samples from a GAN checkpoint to .png/.pt"),
    "evaluate": Command("duet.scripts.evaluate", "FID, KID, IS and digit shares of a GAN"),
    "play": Command("duet.scripts.play", "greedy episodes of an agent checkpoint (and a video)"),
    "configs": Command("duet.scripts.configs", "list the configs that ship with duet; show, copy"),
    "sweep": Command("duet.scripts.sweep_actenv", "train Act/Env variants over seeds, compare"),
    "sweep-gan": Command("duet.scripts.sweep_gan", "train GAN variants over seeds, score them"),
}


def usage() -> str:
    lines = [
        f"duet {version('duet')}: Lightning training of two networks updated in alternation.",
        "",
        "usage: duet COMMAND [options]   (duet COMMAND --help for a command's options)",
        "",
        "training (LightningCLI; options from --config YAML files or --section.key=value):",
        *(f"  {name:<9} {summary}" for name, summary in TRAINING.items()),
        "",
        "tools:",
        *(f"  {name:<9} {command.summary}" for name, command in TOOLS.items()),
        "",
        "  --version  print duet's version",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    first = args[0] if args else "--help"
    if first in ("-h", "--help"):
        print(usage())
        return 0
    if first in ("-V", "--version"):
        print(f"duet {version('duet')}")
        return 0
    if first in TOOLS:
        tool = importlib.import_module(TOOLS[first].module)
        return run_with_clear_errors(lambda: tool.main(args[1:], prog=f"duet {first}"))
    if first not in TRAINING:
        choices = ", ".join(TRAINING | TOOLS)
        print(f"error: unknown command {first!r}; choose one of: {choices}", file=sys.stderr)
        return 2
    from duet.scripts.train import cli_main  # imports Lightning: only when training

    # None: LightningCLI reads sys.argv itself (given both, it warns that one is ignored).
    return run_with_clear_errors(lambda: cli_main(argv))


def entry_point() -> None:
    sys.exit(main())
