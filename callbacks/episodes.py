"""The episodes in progress in each environment copy, and their rating once they end."""

import numpy as np
import torch

from callbacks.rates import transition_values
from datamodules.replay import ReplayBuffer


class EpisodeTracker:
    """Per environment copy: the id of its running episode, its return, and the buffer slots and
    rewards of its transitions so far, so that an ended episode is rated without searching the
    buffer. Rate of a transition = (value − return_offset) / return_scale, the value as defined
    by ``callbacks.rates.transition_values`` with ``discount``."""

    def __init__(
        self, num_envs: int, discount: float | None, return_offset: float, return_scale: float
    ) -> None:
        self.num_envs = num_envs
        self.discount = discount
        self.return_offset = return_offset
        self.return_scale = return_scale
        self.next_episode_id = 0
        self.begin()

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

    def record(self, envs: np.ndarray, slots: np.ndarray, rewards: np.ndarray) -> None:
        """Append one transition (its buffer slot and reward) to each of the copies ``envs``."""
        length = self.episode_length[envs]
        if len(envs) and length.max() == self.episode_slots.shape[1]:
            self.episode_slots = np.concatenate([self.episode_slots] * 2, axis=1)
            self.episode_rewards = np.concatenate([self.episode_rewards] * 2, axis=1)
        self.episode_slots[envs, length] = slots
        self.episode_rewards[envs, length] = rewards
        self.episode_length[envs] = length + 1
        self.episode_return[envs] += rewards

    def finish(
        self, buffer: ReplayBuffer, envs: np.ndarray, cut_off: np.ndarray, env_id: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rate the ended episodes of copies ``envs`` (E,) in ``buffer`` and start new ones there.
        Returns their returns (E,) and the rate of each one's first transition (E,)."""
        lengths = self.episode_length[envs]
        longest = int(lengths.max())
        values = transition_values(
            self.episode_rewards[envs, :longest], lengths, cut_off, self.discount
        )
        inside = np.arange(longest) < lengths[:, None]
        inside_values = values[inside]
        rates = (inside_values - self.return_offset) / self.return_scale
        if not (rates.min() >= -1e-9 and rates.max() <= 1.0 + 1e-9):
            worst = inside_values[np.abs(rates - 0.5).argmax()]
            raise ValueError(
                f"An episode of {env_id} has a transition of value {worst:g} (discount "
                f"{self.discount}), which rates ({worst:g} − return_offset {self.return_offset}) "
                f"/ return_scale {self.return_scale}, outside [0, 1]. Choose return_offset and "
                "return_scale so that every possible value maps into [0, 1]. Without discount the "
                "value is the episode's return; with it, the discounted return times "
                "(1 − discount), which lies between the smallest and largest reward of a step."
            )
        episodes = np.broadcast_to(self.episode_id[envs, None], inside.shape)[inside]
        buffer.rate(episodes, self.episode_slots[envs, :longest][inside], rates.clip(0.0, 1.0))
        returns = self.episode_return[envs].copy()
        first_rates = (values[:, 0] - self.return_offset) / self.return_scale
        self.episode_id[envs] = self.next_episode_id + np.arange(len(envs))
        self.next_episode_id += len(envs)
        self.episode_return[envs] = 0.0
        self.episode_length[envs] = 0
        return returns, first_rates

    _STATE = ("episode_id", "episode_return", "episode_length", "episode_slots", "episode_rewards")

    def state_dict(self) -> dict:
        """Tensors, so that checkpoints load with ``torch.load(weights_only=True)``."""
        arrays = {name: torch.tensor(getattr(self, name)) for name in self._STATE}
        return {"next_episode_id": self.next_episode_id, **arrays}

    def load_state_dict(self, state: dict) -> None:
        self.next_episode_id = int(state["next_episode_id"])
        for name in self._STATE:
            setattr(self, name, state[name].numpy().copy())
