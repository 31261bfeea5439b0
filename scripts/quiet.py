"""Messages a duet user can do nothing about, silenced at the CLI, each with its reason.

Warnings whose cause duet owns are filtered here by their exact text, so that what remains on
the screen is worth reading; anything new still shows.
"""

import logging
import warnings

# message (a regular expression matched at the start) -> why a duet user can do nothing about it
KNOWN = {
    r"You passed in a `val_dataloader` but have no `validation_step`": (
        "GANs measure sample quality in callbacks (SampleQuality), not in validation_step"
    ),
    r"You are using the `dataloader_iter` step flavor": (
        "the agent reads its batch after the environment step on purpose"
    ),
    r"Found `dataloader_iter` argument in the `training_step`": "as above",
    r"Your `IterableDataset` has `__len__` defined": (
        "the replay dataset is only read in the main process (num_workers=0)"
    ),
    r"Found \d+ module\(s\) in eval mode at the start of training": (
        "the reference agent keeps BatchNorm on its running statistics"
    ),
    r"`isinstance\(treespec, LeafSpec\)` is deprecated": "Lightning's own call of a torch API",
    r"'set_vital' is deprecated": "torchdata's StatefulDataLoader calls a deprecated torch API",
    r"You're resuming from a checkpoint that ended before the epoch ended and your dataloader is": (
        "the agent's replay batches are drawn afresh from a buffer its checkpoint restores"
    ),
    r"Using ModelCheckpoint with manual optimization": (
        "duet saves the state after the iteration's steps on purpose (global_step k)"
    ),
}


class DropAdverts(logging.Filter):
    """Lightning's "💡 Tip: … try installing …" lines advertise other products."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def silence_known_messages() -> None:
    for message in KNOWN:
        warnings.filterwarnings("ignore", message=message)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropAdverts) for f in logger.filters):
            logger.addFilter(DropAdverts())
