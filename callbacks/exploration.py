"""Which environments act randomly, and with which actions: the collector's exploration."""

import math
from dataclasses import dataclass

import numpy as np
import torch

from duet.datamodules import option_checks


@dataclass(frozen=True)
class ExplorationSchedule:
    """The collector's ``exploration:`` option: ε-greedy with ε decaying exponentially in the
    environment steps t taken in training, ε = stop + (start − stop)·exp(−decay_rate·t), and each
    random action held for ``hold`` steps. The defaults are the reference's (hold 1: none)."""

    start: float = 1.0
    stop: float = 0.01
    decay_rate: float = 1e-4
    hold: int = 1

    def __post_init__(self) -> None:
        option_checks.between("GymCollector", "exploration.start", self.start, 0, 1)
        option_checks.between("GymCollector", "exploration.stop", self.stop, 0, 1)
        option_checks.at_least("GymCollector", "exploration.decay_rate", self.decay_rate, 0)
        option_checks.at_least("GymCollector", "exploration.hold", self.hold, 1)


class Exploration:
    """ε-greedy over ``num_envs`` environments, as ``schedule`` (``ExplorationSchedule``) sets it.

    With ``schedule.hold`` k > 1 a random action, once drawn, is repeated for k steps of its
    episode: a fixed-duration form of temporally extended ε-greedy (Dabney et al., 2021). A random
    action a step only jitters Acrobot's arm and reaches its goal in about 1 random episode in 13;
    held for 4 steps, it swings the arm up in about half of them. A hold ends with its episode.

    The random draws come from the caller's generator, so that one generator (saved with the
    collector) decides both whether an env explores and what it does.
    """

    # What each environment is in the middle of, saved in checkpoints.
    PER_ENV = ("held_action", "hold_left")

    def __init__(self, num_envs: int, schedule: ExplorationSchedule) -> None:
        self.schedule = schedule
        self.held_action = np.zeros(num_envs, dtype=np.int64)  # (N,) the action being held
        self.hold_left = np.zeros(num_envs, dtype=np.int64)  # (N,) its steps still to come

    def probability(self, steps: int) -> float:
        """ε after ``steps`` environment steps of training."""
        schedule = self.schedule
        decay = math.exp(-schedule.decay_rate * steps)
        return schedule.stop + (schedule.start - schedule.stop) * decay

    def random_actions(
        self, rng: np.random.Generator, explore: np.ndarray, num_actions: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N,) which envs drew exploration -> (N,) which envs act randomly, (N,) their actions
        (every env gets one; only those of exploring envs are meant to be taken)."""
        return self.held(explore, rng.integers(num_actions, size=len(explore)))

    def held(
        self, explore: np.ndarray, random_actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N,) which envs explore and (N,) their random actions, after the hold: an env still
        holding a random action takes it again (and explores), one that starts exploring holds
        its new action for ``hold`` steps in all. Unchanged when ``hold`` is 1."""
        hold = self.schedule.hold
        if hold == 1:
            return explore, random_actions
        holding = self.hold_left > 0
        starting = explore & ~holding
        self.held_action = np.where(starting, random_actions, self.held_action)
        self.hold_left = np.where(starting, hold, self.hold_left) - (explore | holding)
        return explore | holding, np.where(holding, self.held_action, random_actions)

    def end_holds(self, envs: np.ndarray) -> None:
        """Drop the holds of the envs where ``envs`` (N,) is true: their episodes start afresh."""
        self.hold_left = np.where(envs, 0, self.hold_left)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.as_tensor(getattr(self, name)) for name in self.PER_ENV}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.end_holds(np.ones(len(self.hold_left), dtype=bool))  # older checkpoints have none
        for name in self.PER_ENV:
            if name in state:
                setattr(self, name, state[name].numpy().copy())
