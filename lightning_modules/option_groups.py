"""Options grouped into small frozen dataclasses (``model.stabilizers.ema_decay``), as modules
take them, store them in checkpoints and compare them on resume.

A group is a dataclass whose fields are plain values, or makers such as a scheduler callable.
LightningCLI builds it from YAML (``stabilizers: {ema_decay: 0.999}``); Python passes the
dataclass; a checkpoint stores its plain fields as a dict (makers, like optimizers, are not
stored), which ``as_group`` turns back into the dataclass when the module is rebuilt.

Checkpoints of duet 0.2 stored every option at the top level (``ema_decay``);
``nest_moved_options`` moves those into their groups, so such checkpoints load and resume.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

Group = TypeVar("Group")


def as_group(group_class: type[Group], value: Group | Mapping | None) -> Group:
    """``value`` as a ``group_class``: the dataclass itself, a dict of its fields (from a
    checkpoint), or None for the defaults. An unknown field is named with the known ones."""
    if isinstance(value, group_class):
        return value
    if value is None:
        return group_class()
    if not isinstance(value, Mapping):
        raise TypeError(f"{group_class.__name__} expected, got {value!r}.")
    known = {field.name for field in dataclasses.fields(group_class)}  # type: ignore[arg-type]
    unknown = sorted(set(value) - known)
    if unknown:
        raise TypeError(
            f"{group_class.__name__} has no option {', '.join(unknown)}; its options are "
            f"{', '.join(sorted(known))}."
        )
    return group_class(**value)


def stored_settings(group: Any) -> dict:
    """The fields of a group that a checkpoint stores: all but its makers (``MAKERS``, e.g.
    schedulers, which a checkpoint does not store, as it does not store optimizers)."""
    makers = getattr(group, "MAKERS", ())
    return {
        field.name: getattr(group, field.name)
        for field in dataclasses.fields(group)
        if field.name not in makers
    }


def groups_of(module_class: type) -> dict[str, type]:
    """The option groups a module class declares (``OPTION_GROUPS``, its bases' included)."""
    found: dict[str, type] = {}
    for cls in reversed(module_class.__mro__):
        found.update(vars(cls).get("OPTION_GROUPS", {}))
    return found


def nest_moved_options(module_class: type, hparams: dict) -> dict:
    """``hparams`` of a checkpoint with every top-level option that now belongs to a group of
    ``module_class`` moved into that group (what duet 0.2 stored at the top level)."""
    hparams = dict(hparams)
    for group_name, group_class in groups_of(module_class).items():
        fields = {field.name for field in dataclasses.fields(group_class)}
        moved = {name: hparams.pop(name) for name in list(hparams) if name in fields}
        if moved:
            hparams[group_name] = {**(hparams.get(group_name) or {}), **moved}
    return hparams


def flattened(options: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested option dicts and groups as one dict keyed by dotted names (``stabilizers.r1_weight``)
    so that a config and a checkpoint compare option by option."""
    flat: dict[str, Any] = {}
    for name, value in options.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        if isinstance(value, Mapping) and "class_path" not in value:
            flat.update(flattened(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat
