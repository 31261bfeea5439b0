"""``--model.stabilizers.r1_weight null`` and ``--collector.rating.discount=null`` as
jsonargparse reads them right.

jsonargparse 4.53 re-parses a field of a dataclass inside a subclass's init_args as the text
``--GROUP.FIELD=None``, which a ``float | None`` field refuses (the string "None"). Written as
``--model.stabilizers={r1_weight: null}`` the same null arrives as None, and jsonargparse merges
it with the group's other fields. The rewrite touches only the option groups of duet's modules
and of the collector."""

import dataclasses
import inspect
import re

from duet.callbacks.gym_collector import GymCollector
from duet.lightning_modules import GAN, ActEnvAgent
from duet.lightning_modules.option_groups import groups_of

GROUPS = sorted(
    {*groups_of(GAN), *groups_of(ActEnvAgent)}
    | {
        name
        for name, parameter in inspect.signature(GymCollector).parameters.items()
        if dataclasses.is_dataclass(parameter.annotation)
    }
)
GROUP_FIELD = re.compile(rf"--(model|collector)\.(?:init_args\.)?({'|'.join(GROUPS)})\.(\w+)")
NULLS = ("null", "Null", "NULL", "~")


def with_null_fields_as_mappings(args: list[str]) -> list[str]:
    """The command line with ``--SECTION.GROUP.FIELD=null`` (or ``… null``) written as
    ``--SECTION.GROUP={FIELD: null}`` (module docstring)."""
    rewritten: list[str] = []
    for arg in args:
        previous = GROUP_FIELD.fullmatch(rewritten[-1]) if rewritten else None
        flag, equals, value = arg.partition("=")
        match = GROUP_FIELD.fullmatch(flag)
        if match and equals and value in NULLS:
            rewritten.append(f"--{match[1]}.{match[2]}={{{match[3]}: null}}")
        elif previous and arg in NULLS:
            rewritten[-1] = f"--{previous[1]}.{previous[2]}={{{previous[3]}: null}}"
        else:
            rewritten.append(arg)
    return rewritten
