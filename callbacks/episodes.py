"""The episodes in progress in each environment copy, and their rating once they end; and one
greedy episode, as play, videos and evaluation play it."""

import gymnasium as gym
import numpy as np
import torch

from duet.callbacks.rates import transition_values
from duet.datamodules.replay import ReplayBuffer
from duet.lightning_modules.actenv_bootstrap import RateRule


class EpisodeTracker:
    """Per environment copy: the id of its running episode, its return, and the buffer slots and
    rewards of its transitions so far, so that an ended episode is rated without searching the
    buffer. Rate of a transition = (value − return_offset) / return_scale, the value as defined
    by ``duet.callbacks.rates.transition_values`` with ``discount``."""

    def __init__(
        self, num_envs: int, discount: float | None, return_offset: float, return_scale: float
    ) -> None:
        self.num_envs = num_envs
        self.discount = discount
        self.return_offset = return_offset
        self.return_scale = return_scale
        self.next_episode_id = 0
        self.begin()

    @property
    def rule(self) -> RateRule:
        return RateRule(self.discount, self.return_offset, self.return_scale)

    def begin(self) -> None:
        """Fresh episodes in every copy. Transitions of episodes cut short here are never rated,
        so never sampled."""
        n = self.num_envs
        self.episode_id = np.arange(self.next_episode_id, self.next_episode_id + n)
        self.next_episode_id += n
        self.episode_return = np.zeros(n)
        self.episode_length = np.zeros(n, dtype=np.int64)
        self.episode_slots = np.zeros((n, 256), dtype=np.int64)
        self.episode_rewards = np.zeros((n, 256))
        self._measure_headroom()

    def _measure_headroom(self) -> None:
        """Steps before the longest running episode could fill its row of slots: until then
        ``record`` need not look for it (a reduction costs a microsecond per step)."""
        longest = int(self.episode_length.max())
        if longest == self.episode_slots.shape[1]:  # double the rows
            self.episode_slots = np.concatenate([self.episode_slots] * 2, axis=1)
            self.episode_rewards = np.concatenate([self.episode_rewards] * 2, axis=1)
        self.headroom = self.episode_slots.shape[1] - longest

    def record(self, envs: np.ndarray, slots: np.ndarray, rewards: np.ndarray) -> None:
        """Append one transition (its buffer slot and reward) to each of the copies ``envs``."""
        if self.headroom == 0:
            self._measure_headroom()
        self.headroom -= 1  # no episode grows by more than one transition a step
        length = self.episode_length.take(envs)
        self.episode_slots[envs, length] = slots
        if self.discount is not None:  # the reference's rate needs only the return
            self.episode_rewards[envs, length] = rewards
        self.episode_length[envs] = length + 1
        self.episode_return[envs] += rewards

    def finish(
        self, buffer: ReplayBuffer, envs: np.ndarray, terminated: np.ndarray, env_id: str
    ) -> tuple[list[float], list[float]]:
        """Rate the ended episodes of copies ``envs`` (E,) in ``buffer`` and start new ones there.
        ``terminated`` (N,), per copy: ended by failure, not cut off by a time limit. Returns the
        episodes' returns and the rate of each one's first transition (E floats each)."""
        lengths = self.episode_length.take(envs)
        returns = self.episode_return.take(envs)
        if self.discount is None:  # the reference: each transition rates its episode's return
            rates = self._rates(returns, env_id)[:, None]  # (E, 1)
        else:
            longest = int(lengths.max())
            rewards = self.episode_rewards[envs, :longest]
            cut_off = ~terminated[envs]
            values = transition_values(rewards, lengths, cut_off, self.discount)  # (E, T)
            inside = np.arange(longest) < lengths[:, None]
            rates = np.where(inside, values, self.return_offset)  # the padding rates 0
            rates = self._rates(rates, env_id)
        # Episode by episode: E is a few, and a view of each one's slots costs less than
        # gathering them all.
        for env, length, episode_rates in zip(envs.tolist(), lengths.tolist(), rates, strict=True):
            slots = self.episode_slots[env, :length]
            buffer.rate(int(self.episode_id[env]), slots, episode_rates[:length])
            self.episode_id[env] = self.next_episode_id
            self.next_episode_id += 1
        self.episode_return[envs] = 0.0
        self.episode_length[envs] = 0
        return returns.tolist(), rates[:, 0].tolist()

    def _rates(self, values: np.ndarray, env_id: str) -> np.ndarray:
        """(value − return_offset) / return_scale, refused outside [0, 1] (up to rounding)."""
        rates = (values - self.return_offset) / self.return_scale
        low, high = rates.min(), rates.max()
        if low >= 0.0 and high <= 1.0:
            return rates
        if low >= -1e-9 and high <= 1.0 + 1e-9:  # rounding: a rate below 0 would read unrated
            return rates.clip(0.0, 1.0)
        worst = float(values.flat[np.abs(rates - 0.5).argmax()])  # values: (E,) or (E, T)
        what = (
            "the discounted return times (1 − discount), between the smallest and largest "
            "reward of a step"
            if self.discount is not None
            else "the episode's return"
        )
        rate = (worst - self.return_offset) / self.return_scale
        raise ValueError(
            f"GymCollector return_offset={self.return_offset:g}, "
            f"return_scale={self.return_scale:g}: an episode of {env_id} has a transition of "
            f"value {worst:g} ({what}), which rates {rate:g}, outside [0, 1]; set return_offset "
            "to the lowest value the environment can give and return_scale to the highest minus "
            "the lowest."
        )

    _STATE = ("episode_id", "episode_return", "episode_length", "episode_slots", "episode_rewards")

    def state_dict(self) -> dict:
        """Tensors, so that checkpoints load with ``torch.load(weights_only=True)``."""
        arrays = {name: torch.tensor(getattr(self, name)) for name in self._STATE}
        return {"next_episode_id": self.next_episode_id, **arrays}

    def load_state_dict(self, state: dict) -> None:
        self.next_episode_id = int(state["next_episode_id"])
        for name in self._STATE:
            setattr(self, name, state[name].numpy().copy())
        self._measure_headroom()


def greedy_episode(agent, env: gym.Env, seed: int) -> float:
    """The total reward of one greedy episode of ``agent`` in ``env`` reset with ``seed``; the
    previous action is 0 at the start, as in training."""
    obs, _ = env.reset(seed=seed)
    prev_action, total, done = 0, 0.0, False
    while not done:
        states = torch.as_tensor(np.asarray(obs, dtype=np.float32))[None]
        action = int(agent.greedy_actions(states, torch.tensor([prev_action]))[0])
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        prev_action, done = action, terminated or truncated
    return total
