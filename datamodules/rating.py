"""The success rating: how an ended episode rates its transitions in [0, 1], the target the
agent's Q heads learn (the replay buffer's "rate" column). The rule, and every pure function that
applies it: on ended episodes (the collector), and bootstrapped from the next state (the agent)."""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from duet.datamodules import option_checks

UNRATED = -1.0  # the rating of a transition whose episode is still running: never sampled
OWNER = "GymCollector"  # the rule is the collector's ``rating`` option: errors name its keys


def transition_values(
    rewards: np.ndarray, lengths: np.ndarray, cut_off: np.ndarray, discount: float | None
) -> np.ndarray:
    """Rewards (E, T) of E ended episodes, padded after each one's length (E,) -> (E, T) value of
    each transition (0 in the padding). ``cut_off`` (E,) marks episodes ended by a time limit.

    ``discount`` None (the reference): every transition gets its episode's return, so the first step
    of a long episode and the step that dropped the pole look alike.

    ``discount`` γ: the discounted return from each transition on, times (1 − γ), i.e. the mean
    discounted reward per step that followed it, v_t = (1 − γ)·r_t + γ·v_{t+1}. After a
    termination nothing follows (v_T = 0); an episode cut off by a time limit is assumed to go on
    earning its last reward (v_T = r_{T−1}), since it did not fail. For CartPole (reward 1 a step)
    v_t = 1 − γ^(steps to the fall), and 1 on episodes that reached the time limit.
    """
    inside = np.arange(rewards.shape[1]) < lengths[:, None]  # (E, T)
    rewards = np.where(inside, rewards, 0.0)
    if discount is None:
        return np.where(inside, rewards.sum(axis=1, keepdims=True), 0.0)
    last_reward = rewards[np.arange(len(lengths)), lengths - 1]
    value = np.where(cut_off, last_reward, 0.0)  # (E,) what follows each episode's end
    values = np.zeros(rewards.shape)
    for t in range(rewards.shape[1] - 1, -1, -1):  # one vector operation per time step
        value = np.where(inside[:, t], (1.0 - discount) * rewards[:, t] + discount * value, value)
        values[:, t] = value
    return np.where(inside, values, 0.0)


@dataclass(frozen=True)
class SuccessRating:
    """rating = (value − return_offset) / return_scale, in [0, 1]; the value of a transition is
    its episode's return (``discount`` None, the reference) or the scaled discounted return that
    followed it (``transition_values``). The collector's ``rating:`` option; the defaults are the
    reference's CartPole scale (returns 0 to 500)."""

    return_scale: float = 500.0
    return_offset: float = 0.0
    discount: float | None = None

    def __post_init__(self) -> None:
        option_checks.positive(OWNER, "rating.return_scale", self.return_scale)
        if self.discount is not None:
            note = ", or null to rate by the episode's return"
            name = "rating.discount"
            option_checks.between(OWNER, name, self.discount, 0, 1, closed=False, note=note)

    def describe(self) -> str:
        """The option values, as an error message names them."""
        return (
            f"{OWNER} rating.return_offset={self.return_offset:g}, "
            f"rating.return_scale={self.return_scale:g}"
        )

    def check_reward_threshold(self, env_id: str, threshold: float | None) -> None:
        """Raise unless the return Gymnasium names as solving ``env_id`` (its spec's
        reward_threshold, where it has one) rates inside [0, 1]: otherwise the first episode that
        good would stop training, possibly hours in. Only the reference's (undiscounted) rating
        rates returns; Gymnasium 1.x exposes no reward range, so returns beyond the threshold are
        checked when episodes end."""
        if threshold is None or self.discount is not None:
            return
        rating = (threshold - self.return_offset) / self.return_scale
        if not 0.0 <= rating <= 1.0:
            raise ValueError(
                f"{self.describe()} rate {env_id}'s reward threshold {threshold:g} at "
                f"{rating:.3g}, outside [0, 1]: the first episode that good would stop training. "
                "Choose them so that (return − return_offset) / return_scale lies in [0, 1] for "
                f"every return the environment can give (e.g. return_offset ≤ {threshold:g} ≤ "
                "return_offset + return_scale)."
            )

    def of_values(self, values: np.ndarray, env_id: str) -> np.ndarray:
        """(value − return_offset) / return_scale, refused outside [0, 1] (up to rounding)."""
        ratings = (values - self.return_offset) / self.return_scale
        low, high = ratings.min(), ratings.max()
        if low >= 0.0 and high <= 1.0:
            return ratings
        if low >= -1e-9 and high <= 1.0 + 1e-9:  # rounding: a rating below 0 would read unrated
            return ratings.clip(0.0, 1.0)
        worst = float(values.flat[np.abs(ratings - 0.5).argmax()])  # values: (E,) or (E, T)
        what = (
            "the discounted return times (1 − discount), between the smallest and largest "
            "reward of a step"
            if self.discount is not None
            else "the episode's return"
        )
        rating = (worst - self.return_offset) / self.return_scale
        raise ValueError(
            f"{self.describe()}: an episode of {env_id} has a transition of value {worst:g} "
            f"({what}), which rates {rating:g}, outside [0, 1]; set return_offset to the lowest "
            "value the environment can give and return_scale to the highest minus the lowest."
        )

    def of_episodes(
        self,
        rewards: np.ndarray,
        lengths: np.ndarray,
        returns: np.ndarray,
        cut_off: np.ndarray,
        env_id: str,
    ) -> np.ndarray:
        """Ratings of the transitions of E ended episodes: (E, 1), one per episode, from the
        returns (E,) without a discount (the reference needs no rewards); else (E, T) from the
        rewards (E, T) padded after each one's length (E,), ``cut_off`` (E,) by a time limit."""
        if self.discount is None:
            return self.of_values(returns, env_id)[:, None]
        values = transition_values(rewards, lengths, cut_off, self.discount)  # (E, T)
        inside = np.arange(rewards.shape[1]) < lengths[:, None]
        values = np.where(inside, values, self.return_offset)  # the padding rates 0
        return self.of_values(values, env_id)


def bootstrapped_ratings(
    rating: SuccessRating, rewards: Tensor, terminated: Tensor, next_ratings: Tensor
) -> Tensor:
    """(B,) rewards, termination flags and ratings of the next states -> (B,) ratings: one-step
    Q-learning on the rating scale, instead of what followed in the episode.

    On the rating scale v_t = (1 − γ)·r_t + γ·v_{t+1} reads
    rating_t = (1 − γ)·(r_t − offset)/scale + γ·rating_{t+1}. After a termination nothing follows
    (v = 0, so rating_{t+1} = −offset/scale); an episode cut off by a time limit goes on from its
    next state, whose rating is bootstrapped like any other.
    """
    gamma, offset, scale = rating.discount, rating.return_offset, rating.return_scale
    if gamma is None:  # the agent refuses such a rating before training (check_rating)
        raise ValueError("bootstrapped ratings need rating.discount; it is null")
    after_end = torch.full_like(next_ratings, -offset / scale)
    following = torch.where(terminated, after_end, next_ratings)
    ratings = (1.0 - gamma) * (rewards - offset) / scale + gamma * following
    return ratings.clamp(0.0, 1.0)  # rounding must not push a BCE target out of [0, 1]
