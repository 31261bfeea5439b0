"""The top-level ``collector:`` section of an agent's config: the GymCollector reached by name
(``--collector.env_id Acrobot-v1``), not by its place in ``trainer.callbacks``.

LightningCLI's ``add_lightning_class_args`` makes a callback a section of its own and adds it to
the trainer's callbacks after those of ``trainer.callbacks``, where agent configs listed the
collector before, so the callbacks run in the same order. Optional (``required=False``) so that a
GAN's config needs none; LightningCLI then hands the trainer ``None`` in its place, which
``drop_absent_collector`` removes. The collector keeps its checkpoint key (``GymCollector``, its
state key), so checkpoints of runs that listed it in ``trainer.callbacks`` resume.
"""

import lightning as L
from lightning.pytorch.cli import LightningArgumentParser

from duet.callbacks.gym_collector import GymCollector
from duet.datamodules.trainer_attributes import trainer_callbacks

SECTION = "collector"


def add_collector_section(parser: LightningArgumentParser) -> None:
    """``collector:``, a GymCollector (or a subclass, by ``class_path``), absent by default."""
    parser.add_lightning_class_args(GymCollector, SECTION, subclass_mode=True, required=False)


def check_one_collector(config) -> None:
    """Refuse a ``collector:`` section beside a GymCollector in ``trainer.callbacks`` (``config``:
    the subcommand's instantiated config): a second collector would step its own environments
    into the same buffer, and Lightning refuses two states under one key."""
    listed = config["trainer"].get("callbacks") or []
    listed = listed if isinstance(listed, list) else [listed]
    if config.get(SECTION) is not None and any(isinstance(c, GymCollector) for c in listed):
        raise ValueError(
            "Two GymCollectors: the config has a collector: section and a GymCollector in "
            "trainer.callbacks; keep the collector: section alone (or set collector: null)."
        )


def drop_absent_collector(trainer: L.Trainer) -> None:
    """Drop the ``None`` that an absent ``collector:`` section left among the callbacks."""
    callbacks = trainer_callbacks(trainer)  # typed list[Callback], but it holds that None
    callbacks[:] = [callback for callback in callbacks if callback is not None]
