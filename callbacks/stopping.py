"""When the collector ends training: its ``stopping:`` option.

Lightning's own stops do not say the same thing. EarlyStopping (``stopping_threshold``,
``check_on_train_epoch_end``) checks only when a training epoch or a validation ends, here every
``batches_per_epoch`` (1,000) iterations, not at the iteration the condition is met; it would
stop at once on the NaN that a mean over no episodes is (``check_finite``); and it has no notion
of a full window. ``trainer.max_steps`` counts training iterations, not the transitions collected
(the prefill and the environment copies change the ratio), and no trainer option counts
episodes. These rules are therefore checked by the collector after each iteration's collection,
and stop training through Lightning's ``trainer.should_stop``.
"""

from dataclasses import dataclass

from duet.datamodules import option_checks


@dataclass(frozen=True)
class StoppingRules:
    """Training stops at the first iteration after which the mean return of the last ``window``
    episodes (of every process) reaches ``mean_return``, ``max_episodes`` episodes ended, or
    ``max_env_steps`` transitions (prefill included, all processes together) were collected.
    None turns a rule off. The defaults are the reference's: a 100-episode mean of 500, or 1,111
    episodes."""

    mean_return: float | None = 500.0
    max_episodes: int | None = 1_111
    max_env_steps: int | None = None
    window: int = 100

    def __post_init__(self) -> None:
        owner = "GymCollector"
        option_checks.at_least(owner, "stopping.max_episodes", self.max_episodes, 1, optional=True)
        option_checks.at_least(
            owner, "stopping.max_env_steps", self.max_env_steps, 1, optional=True
        )
        option_checks.at_least(owner, "stopping.window", self.window, 1)

    def check_prefill(self, prefill_steps: int) -> None:
        """Refuse a step budget that the prefill (``prefill_steps`` transitions) uses up."""
        if self.max_env_steps is not None and self.max_env_steps <= prefill_steps:
            raise ValueError(
                f"GymCollector stopping.max_env_steps={self.max_env_steps} is not above "
                f"prefill_steps={prefill_steps}: the prefill would use the whole budget and the "
                "run stop before training; raise stopping.max_env_steps or lower prefill_steps."
            )

    def reached(
        self, mean_return: float, full_windows: bool, episodes: int, env_steps: int
    ) -> bool:
        """Whether training ends, given the mean return over the last windows, whether every
        process's window is full, and the episodes ended and transitions collected in all."""
        if self.mean_return is not None and full_windows and mean_return >= self.mean_return:
            return True
        if self.max_episodes is not None and episodes >= self.max_episodes:
            return True
        return self.max_env_steps is not None and env_steps >= self.max_env_steps
