"""The episodes in progress in each environment copy, and their rating once they end."""

import numpy as np
import torch

from duet.datamodules.rating import SuccessRating
from duet.datamodules.replay import ReplayBuffer


class EpisodeTracker:
    """Per environment copy: the id of its running episode, its return, and the buffer slots and
    rewards of its transitions so far, so that an ended episode is rated without searching the
    buffer. Its transitions' success ratings follow ``rating`` (``SuccessRating``)."""

    def __init__(self, num_envs: int, rating: SuccessRating) -> None:
        self.num_envs = num_envs
        self.rating = rating
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
        if self.rating.discount is not None:  # the reference's rating needs only the return
            self.episode_rewards[envs, length] = rewards
        self.episode_length[envs] = length + 1
        self.episode_return[envs] += rewards

    def finish(
        self, buffer: ReplayBuffer, envs: np.ndarray, terminated: np.ndarray, env_id: str
    ) -> tuple[list[float], list[float]]:
        """Rate the ended episodes of copies ``envs`` (E,) in ``buffer`` and start new ones there.
        ``terminated`` (N,), per copy: ended by failure, not cut off by a time limit. Returns the
        episodes' returns and the rating of each one's first transition (E floats each)."""
        lengths = self.episode_length.take(envs)
        returns = self.episode_return.take(envs)
        rewards = self.episode_rewards[envs, : int(lengths.max())]
        cut_off = ~terminated[envs]
        ratings = self.rating.of_episodes(rewards, lengths, returns, cut_off, env_id)  # (E, T|1)
        # Episode by episode: E is a few, and a view of each one's slots costs less than
        # gathering them all.
        for env, length, episode_ratings in zip(
            envs.tolist(), lengths.tolist(), ratings, strict=True
        ):
            slots = self.episode_slots[env, :length]
            buffer.rate(int(self.episode_id[env]), slots, episode_ratings[:length])
            self.episode_id[env] = self.next_episode_id
            self.next_episode_id += 1
        self.episode_return[envs] = 0.0
        self.episode_length[envs] = 0
        return returns.tolist(), ratings[:, 0].tolist()

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
