"""A command line or config that does not parse is one ``error:`` line: the key, where it was
given, what is wrong and the fix, instead of jsonargparse's usage block and its report of every
type it tried (``DUET_DEBUG=1`` keeps that report).

    error: model.nosie_dim (bad.yaml, line 3) is not an option of duet.lightning_modules.GAN;
    did you mean noise_dim?
"""

import difflib
import inspect
import os
import re
import sys
from pathlib import Path

from lightning.pytorch.cli import LightningArgumentParser

from duet.scripts.configs import CONFIG_FLAGS, config_options, config_value
from duet.scripts.moved_options import moved_option_message

_given: list[str] = []  # the command line being parsed, for the source of a bad key

SECTIONS = ("trainer", "model", "data", "collector", "wandb", "optimizer", "lr_scheduler")
UNKNOWN = (
    r"Option '(?P<name>[\w.]+)' is not accepted",
    r"unrecognized arguments: --(?P<name>[\w.]+)",
    r"does not accept option '(?P<name>[\w.]+)'",
    r"Key \"(?P<name>[\w.]+)\" is not expected",
)


def remember_command_line(args: list[str]) -> None:
    _given[:] = args


def one_line(message: str, given: list[str]) -> str:
    """The parser's ``message`` as one line that names the key, its source and the fix."""
    return (
        moved_option_message(message)
        or unknown_key_message(message, given)
        or wrong_value_message(message)
        or " ".join(message.split())
    )


def outer_key(message: str) -> str:
    found = re.search(r'Parser key "([\w.]+)"', message)
    return found.group(1) if found else ""


def unknown_key_message(message: str, given: list[str]) -> str | None:
    for pattern in UNKNOWN:
        if found := re.search(pattern, message):
            name = found.group("name")
            break
    else:
        return None
    section = outer_key(message) or (name.split(".")[0] if "." in name else "")
    class_path = re.search(r"given class_path '([\w.]+)'", message)
    key = f"{section}.{name}" if section and not name.startswith(f"{section}.") else name
    owner = class_path.group(1) if class_path else None
    known = option_names(owner, section if owner else name.split(".")[0])
    leaf = name.removeprefix("init_args.") if owner else name.removeprefix(f"{section}.")
    close = difflib.get_close_matches(leaf, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    where = source_of(name.split(".")[-1], given)
    of = owner or {"trainer": "lightning.Trainer", "": "the command"}.get(section, section)
    return f"{key}{where} is not an option of {of}{hint}"


def option_names(class_path: str | None, section: str) -> list[str]:
    """The options a class takes (its dataclass groups' fields as ``group.field``), or the
    trainer's, or the sections of the config."""
    import lightning as L

    from duet.lightning_modules.checkpoints import import_class

    owner: type | None = None
    if class_path:
        try:
            owner = import_class(class_path)
        except (ImportError, AttributeError, ValueError):
            return []
        if owner is None:
            return []
    elif section == "trainer":
        owner = L.Trainer
    else:
        return list(SECTIONS)
    names = []
    for name, parameter in inspect.signature(owner).parameters.items():
        names.append(name)
        fields = getattr(parameter.annotation, "__dataclass_fields__", {})
        names += [f"{name}.{field}" for field in fields]
    return [f"trainer.{name}" for name in names] if owner is L.Trainer else names


def source_of(name: str, given: list[str]) -> str:
    """Where ``name`` was given: " (command line)", " (FILE, line N)" or ""."""
    options = [arg for arg in given if arg.startswith("-") and arg not in CONFIG_FLAGS]
    if any(re.search(rf"[.-]{re.escape(name)}(=|$)", arg) for arg in options):
        return " (command line)"
    for path in config_files(given):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.match(rf"\s*(- )?{re.escape(name)}\s*:", line) or f"{{{name}:" in line:
                return f" ({path}, line {number})"
    return ""


def config_files(given: list[str]) -> list[Path]:
    values = (config_value(given, *option) for option in config_options(given))
    return [Path(value) for value in values if Path(value).is_file()]


def wrong_value_message(message: str) -> str | None:
    """``KEY: expected TYPES, got VALUE`` for a value of the wrong type; ``KEY: CLASS: REASON``
    for a class that cannot be used."""
    keys = list(dict.fromkeys(re.findall(r'Parser key "([\w.]+)"', message)))
    key = ".".join(k for i, k in enumerate(keys) if i == 0 or not k.startswith(keys[0]))
    key = key or "a value"
    unusable = re.search(r"given class_path '([\w.]+)':\s*+(?!Parser key)(.+)", message)
    if unusable:
        return f"{key}: {unusable.group(1)}: {unusable.group(2).strip()}"
    expected = re.findall(r"Expected a (typing\.Literal\[.*?\]|<class '[\w.]+'>)", message)
    if not expected:
        return None
    got = re.search(r"Got value: (.*)|Given value: (.*)", message)
    value = next(v for v in got.groups() if v is not None).strip() if got else "?"
    return f"{key}: expected {' or '.join(dict.fromkeys(map(readable, expected)))}, got {value!r}"


def readable(expected: str) -> str:
    """``<class 'int'>`` -> int; ``typing.Literal['a', 'b']`` -> one of 'a', 'b'."""
    if expected.startswith("typing.Literal["):
        return f"one of {expected.removeprefix('typing.Literal[').removesuffix(']')}"
    name = expected.removeprefix("<class '").removesuffix("'>")
    return "None" if name == "NoneType" else name


class DuetArgumentParser(LightningArgumentParser):
    """LightningCLI's parser, whose errors are one line (module docstring)."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error or os.environ.get("DUET_DEBUG"):
            # A nested parser: its parent reports the message (moved options already named).
            super().error(moved_option_message(message) or message, ex)
        sys.stderr.write(f"error: {one_line(message, _given)}\n")
        self.exit(2)
