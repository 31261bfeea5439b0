"""The configs that ship with duet, found by name from any folder; ``duet configs`` lists them.

``--config gan`` (also ``gan.yaml``, ``configs/gan.yaml``, ``metrics/fid``) reads the packaged
``gan.yaml`` unless a file of that name exists where the command runs: a path always wins.
Every run reads ``base.yaml`` (the trainer, checkpoints and logger that the experiments share)
before its ``--config`` files: a config, packaged or your own, states only what differs.

    duet configs                 every config, one line each
    duet configs show NAME       print one
    duet configs copy NAME [DIR] copy one to DIR (default: here) to edit, then --config FILE
"""

import argparse
import difflib
import shutil
import sys
from importlib.resources import files
from pathlib import Path

from duet.scripts.errors import ToolParser

CONFIG_FLAGS = ("--config", "-c")
SUBCOMMANDS = ("fit", "validate", "test", "predict")
BASE = "base"  # configs/base.yaml, read before every --config (scripts/train.py)


class ConfigError(ValueError):
    """A ``--config`` value that is neither a YAML file nor the name of a packaged config."""


def packaged_configs() -> dict[str, Path]:
    """Name (the path under configs/ without ``.yaml``, e.g. ``metrics/fid``) -> file."""
    root = Path(str(files("duet.configs")))
    # Resolved: a development install links each file to the repository's configs/, which
    # messages and saved configs then name.
    return {
        path.relative_to(root).with_suffix("").as_posix(): path.resolve()
        for path in root.rglob("*.yaml")
    }


def base_config() -> Path:
    """The packaged ``base.yaml`` that every run reads first; ``ConfigError`` when the install
    lacks it (jsonargparse would skip a missing default config file without a word)."""
    path = Path(str(files("duet.configs"))) / f"{BASE}.yaml"
    if not path.is_file():
        raise ConfigError(f"duet's {path} is missing: reinstall duet (pip install .).")
    return path.resolve()


def summary(path: Path) -> str:
    """The config's first comment line: what it trains or adds."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def is_inline_yaml(value: str) -> bool:
    """jsonargparse also takes the YAML itself as the value of ``--config``."""
    return "\n" in value or ": " in value or value.lstrip().startswith("{")


def find_config(value: str) -> Path:
    """The packaged config that ``value`` names; ``ConfigError`` with the closest names
    when there is none."""
    name = value.removeprefix("configs/").removesuffix(".yaml").removesuffix(".yml")
    configs = packaged_configs()
    if name in configs:
        return configs[name]
    containing = [known for known in sorted(configs) if name in known]
    close = containing[:3] or difflib.get_close_matches(name, sorted(configs), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ConfigError(
        f"config {value!r}: no such file here, and duet ships no config of that name; {hint}"
        "`duet configs` lists the names."
    )


def resolve_config(value: str) -> str:
    """``value`` itself when it is a file (or YAML text), else the packaged config it names;
    a file that is not valid YAML is named, with the line and column of the fault."""
    if is_inline_yaml(value):
        return value
    path = Path(value) if Path(value).exists() else find_config(value)
    check_yaml(path)
    return str(path)


def check_yaml(path: Path) -> None:
    """One line naming the file, line and column when ``path`` does not parse as YAML (the
    parser's own message names only "<unicode string>")."""
    import yaml  # only when a config is read: `duet configs` and --help stay light

    try:
        yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or error
        raise ConfigError(f"config {path} is not valid YAML{where}: {problem}.") from error


def config_options(args: list[str]) -> list[tuple[int, int]]:
    """Where each ``--config`` of a command line stands: (the index of its flag, the index of its
    value), the same index for ``--config=VALUE``; a flag without a value is left out."""
    found, index = [], 0
    while index < len(args):
        flag, equals, _ = args[index].partition("=")
        if equals and flag in CONFIG_FLAGS:
            found.append((index, index))
        elif args[index] in CONFIG_FLAGS and index + 1 < len(args):
            found.append((index, index + 1))
            index += 1
        index += 1
    return found


def config_value(args: list[str], flag: int, value: int) -> str:
    """The value of the ``--config`` at (``flag``, ``value``) of ``config_options``."""
    return args[value].partition("=")[2] if flag == value else args[value]


def with_packaged_configs(args: list[str]) -> list[str]:
    """The command line with every ``--config NAME`` / ``--config=NAME`` resolved."""
    resolved = list(args)
    for flag, value in config_options(args):
        path = resolve_config(config_value(args, flag, value))
        resolved[value] = f"{args[flag].partition('=')[0]}={path}" if flag == value else path
    return resolved


def configs_first(args: list[str]) -> list[str]:
    """The command line with each subcommand's ``--config`` files moved before its other
    options (in their own order), so that an option given on the command line overrides every
    config wherever it stands: jsonargparse applies arguments in order, and would let a later
    ``--config`` silently undo an earlier option (or refuse one whose class it names)."""
    command = next((i for i, arg in enumerate(args) if arg in SUBCOMMANDS), len(args))
    before, after = args[:command], args[command + 1 :]
    return [
        *configs_before_options(before),
        *args[command : command + 1],
        *configs_before_options(after),
    ]


def configs_before_options(args: list[str]) -> list[str]:
    in_configs = {index for option in config_options(args) for index in option}
    configs = [arg for index, arg in enumerate(args) if index in in_configs]
    return configs + [arg for index, arg in enumerate(args) if index not in in_configs]


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = ToolParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    actions = parser.add_subparsers(dest="action")
    show = actions.add_parser("show", help="print a config")
    show.add_argument("name")
    copy = actions.add_parser("copy", help="copy a config to a folder, to edit it")
    copy.add_argument("name")
    copy.add_argument("folder", type=Path, nargs="?", default=Path("."))
    copy.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    if args.action is None:
        configs = packaged_configs()
        width = max(map(len, configs))
        for name in sorted(configs, key=lambda name: (name != BASE, name)):  # the base first
            print(f"{name:<{width}}  {summary(configs[name])}")
        return 0
    source = find_config(args.name)
    if args.action == "show":
        sys.stdout.write(source.read_text())
        return 0
    target = args.folder / source.name
    if target.exists() and not args.force:
        raise FileExistsError(
            f"{target} exists; add --force to replace it, or name another folder."
        )
    args.folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    print(f"wrote {target}; train with: duet fit --config {target}")
    return 0
