"""Weights & Biases for duet runs: added beside the experiment's CSV logger, offline by default.

Mode: ``online`` when the user is logged in (``WANDB_API_KEY`` or a netrc entry for the W&B host),
otherwise ``offline``, which writes a run folder that ``wandb sync`` uploads later. ``WANDB_MODE``
or ``wandb.mode`` overrides. If an online start fails (no route to the server), the run goes on
offline instead of crashing. ``log_model`` uploads checkpoints as artifacts online only; offline
it is turned off with a warning (WandbLogger refuses the combination), and the checkpoints stay in
the run folder.
"""

import netrc
import os
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn


@dataclass
class WandbOptions:
    """The ``wandb:`` section of a duet config (``configs/logger/wandb.yaml`` turns it on).

    Args:
        enabled: add a WandbLogger to the run.
        project: W&B project name.
        entity: the W&B user or team that owns the project (None: your default entity).
        name: the run's display name (None: W&B picks one).
        group: a W&B run group, e.g. one per sweep or per seed set.
        mode: "online", "offline" or None (online when logged in, else offline).
        log_model: upload checkpoints as artifacts (online only): True, False or "all".
        tags: W&B run tags.
    """

    enabled: bool = False
    project: str = "duet"
    entity: str | None = None
    name: str | None = None
    group: str | None = None
    mode: Literal["online", "offline"] | None = None
    log_model: bool | Literal["all"] = False
    tags: list[str] = field(default_factory=list)


def logged_in() -> bool:
    """Whether W&B credentials are present, without contacting the server."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    # Without a host name, only the netrc's default entry can match.
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def choose_mode(options: WandbOptions) -> str:
    if options.mode is not None:
        return options.mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if logged_in() else "offline"


class ResilientWandbLogger(WandbLogger):
    """A WandbLogger that starts offline when the online start fails, rather than crashing."""

    @property
    def experiment(self):
        try:
            return super().experiment
        except Exception as error:  # wandb raises several kinds when the server is unreachable
            if self._wandb_init.get("mode") == "offline":
                raise
            rank_zero_warn(f"W&B could not start online ({error}); logging offline instead.")
            self._wandb_init["mode"] = "offline"
            self._experiment = None
            return super().experiment


def make_wandb_logger(options: WandbOptions, save_dir: str, run_id: str | None) -> WandbLogger:
    """A logger writing under ``save_dir``; ``run_id`` continues that W&B run (on resume)."""
    mode = choose_mode(options)
    log_model = options.log_model
    if log_model and mode != "online":
        rank_zero_warn(
            f"wandb.log_model={log_model} needs online mode; W&B is {mode}, so checkpoints stay in "
            "the run folder only. Log in (wandb login) to upload them."
        )
        log_model = False
    resume: dict[str, Any] = {"id": run_id, "resume": "allow"} if run_id else {}
    # Absolute: wandb's service process may run in another working directory.
    save_dir = os.path.abspath(save_dir)
    os.makedirs(save_dir, exist_ok=True)
    return ResilientWandbLogger(
        project=options.project,
        entity=options.entity,
        name=options.name,
        group=options.group,
        save_dir=save_dir,
        log_model=log_model,
        tags=options.tags or None,
        mode=mode,
        settings={"init_timeout": 60, "silent": True},
        **resume,
    )
