"""One line, instead of jsonargparse's dump of every type it tried, for an option that a release
moved into a group (duet 0.3: ``model.ema_decay`` is ``model.stabilizers.ema_decay``)."""

import dataclasses
import re


def moved_options() -> dict[str, str]:
    """Each option of duet 0.2's modules that now sits in a group -> that group's name."""
    from duet.lightning_modules import GAN, ActEnvAgent
    from duet.lightning_modules.option_groups import groups_of

    moved: dict[str, str] = {}
    for module in (GAN, ActEnvAgent):
        for group, group_class in groups_of(module).items():
            for field in dataclasses.fields(group_class):
                moved.setdefault(field.name, group)
    moved["hinge_loss"] = "generator_loss/discriminator_loss"
    return moved


def moved_option_message(message: str) -> str | None:
    """The one-line message for a parse error caused by a moved option; None for another. A
    nested parser's message, already rewritten, is found inside its parent's."""
    rewritten = re.search(r"model\.\w+ (?:moved|was removed) in duet 0\.3:[^\n]*", message)
    if rewritten:
        return rewritten.group(0)
    moved = moved_options()
    for name in re.findall(r"Option '(\w+)' is not accepted", message):
        if name == "hinge_loss":
            return (
                "model.hinge_loss was removed in duet 0.3: set model.generator_loss and "
                "model.discriminator_loss to duet.lightning_modules.gan_losses."
                "hinge_generator_loss and hinge_discriminator_loss."
            )
        if name in moved:
            group = moved[name]
            return (
                f"model.{name} moved in duet 0.3: it is model.{group}.{name} now (in YAML, "
                f"{name} under {group}: in the model's init_args; on the command line "
                f"--model.{group}.{name})."
            )
    return None
