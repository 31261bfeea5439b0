"""A virtual environment with duet's wheel and only what a plain ``pip install duet`` brings.

Installing torch and the rest from the network would take minutes, so the environment reads
them from this one: a folder of links to the files of exactly the distributions that duet's
required dependencies pull in (no extras), given to the new environment as one path entry.
Optional packages (moviepy, tensorboard, stable-baselines3, pygame, torch-fidelity) are
absent, as they are after ``pip install .``.
"""

import re
import subprocess
import sys
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

OPTIONAL = ("moviepy", "tensorboard", "stable_baselines3", "pygame", "torch_fidelity")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def required_distributions(root: str = "duet") -> dict[str, Distribution]:
    """The installed distributions that ``root``'s requirements pull in, without its extras
    (but with the extras its dependencies ask of each other, e.g. jsonargparse[signatures])."""
    found: dict[str, Distribution] = {}
    expanded: set[tuple[str, str]] = set()  # (distribution, extra) whose requirements are listed
    wanted = [(Requirement(r), "") for r in distribution(root).requires or []]
    while wanted:
        requirement, extra = wanted.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonical(requirement.name)
        try:
            found[name] = found.get(name) or distribution(requirement.name)
        except PackageNotFoundError:
            continue  # a requirement for another platform, not installed here
        for asked in {"", *requirement.extras} - {e for n, e in expanded if n == name}:
            expanded.add((name, asked))
            wanted += [(Requirement(r), asked) for r in found[name].requires or []]
    return found


def link_files(distributions: dict[str, Distribution], folder: Path) -> Path:
    """``folder`` with a link to each top-level file or package of ``distributions``."""
    folder.mkdir(parents=True)
    for dist in distributions.values():
        for file in dist.files or []:
            top = file.parts[0]
            source = Path(str(dist.locate_file(top)))
            target = folder / top
            if top == ".." or top.endswith(".pth") or target.exists() or not source.exists():
                continue
            target.symlink_to(source)
    return folder


def run(*command, **options) -> str:
    result = subprocess.run(command, capture_output=True, text=True, **options)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout.strip()


def plain_environment(wheel: Path, root: Path) -> Path:
    """A new virtual environment under ``root`` with ``wheel`` installed as ``pip install``
    would, without extras; its bin/ folder."""
    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", wheel)
    site = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"))
    dependencies = {n: d for n, d in required_distributions().items() if n != "duet"}
    (site / "dependencies.pth").write_text(f"{link_files(dependencies, root / 'dependencies')}\n")
    return venv / "bin"
