"""What the collector and the greedy rollouts need of an agent: the declared interface between
the GymCollector (callbacks) and a LightningModule that learns from its replay buffer.

ActEnvAgent implements it; an agent of one's own needs only these three methods to be trained
with a GymCollector, and ``greedy_actions`` alone to be played and evaluated.
"""

from typing import Protocol, runtime_checkable

from torch import Tensor

from duet.datamodules.rating import SuccessRating


@runtime_checkable
class GreedyPolicy(Protocol):
    """Acts greedily: what ``duet play``, the videos and the greedy evaluation call."""

    def greedy_actions(self, states: Tensor, prev_actions: Tensor) -> Tensor:
        """(N, S) states and (N,) previous actions (0 at an episode's start) -> (N,) actions."""
        ...


@runtime_checkable
class CollectingAgent(GreedyPolicy, Protocol):
    """An agent a GymCollector trains: built for the environment, told how transitions are
    rated, and asked for greedy actions whenever a copy of the environment does not explore."""

    def build(self, state_size: int, action_size: int) -> None:
        """Create the networks for the environment's observation size and number of actions
        (called at every set-up; a second call with the same sizes does nothing)."""
        ...

    def use_success_rating(self, rating: SuccessRating) -> None:
        """How the collector rates transitions (an agent that bootstraps ratings applies it)."""
        ...


def check_collecting_agent(module: object, owner: str) -> CollectingAgent:
    """``module``, refused in one line unless it implements ``CollectingAgent``."""
    if not isinstance(module, CollectingAgent):
        missing = [
            name
            for name in ("build", "use_success_rating", "greedy_actions")
            if not callable(getattr(module, name, None))
        ]
        raise TypeError(
            f"{owner} trains a CollectingAgent (duet.lightning_modules.collecting_agent), but "
            f"model {type(module).__name__} lacks {', '.join(missing)}: use "
            "duet.lightning_modules.ActEnvAgent, or give the model these methods."
        )
    return module
