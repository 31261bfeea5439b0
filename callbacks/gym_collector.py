"""Steps Gymnasium environments between training iterations and fills the replay buffer."""

from collections import deque

import gymnasium as gym
import lightning as L
import numpy as np
import torch

from duet.callbacks.collector_state import load_local_state, local_state
from duet.callbacks.direct_logging import log_to_loggers
from duet.callbacks.episode_plot import EpisodeHistory
from duet.callbacks.episodes import EpisodeTracker
from duet.callbacks.exploration import Exploration
from duet.callbacks.gym_checks import check_environment, check_rate_range
from duet.callbacks.run_folder import run_folder
from duet.datamodules import settings
from duet.datamodules.experience import ExperienceDataModule
from duet.datamodules.process_state import gather_processes, own_state


class GymCollector(L.Callback):
    """Owns ``num_envs`` copies of ``env_id`` (a Gymnasium vector env: CartPole's native one where
    it exists) and writes their transitions into the ExperienceDataModule's replay buffer.

    Order within training iteration k:
      1. ``on_train_batch_start``: ``steps_per_iteration`` vector steps. Each env acts randomly
         with probability p = explore_stop + (explore_start − explore_stop)·exp(−decay_rate·t),
         t = environment steps taken in training so far, else greedily from Act given its state
         and previous action (0 at the start of every episode). With ``explore_hold`` k > 1 a
         random action, once drawn, is repeated for k steps of its episode, prefill included
         (``Exploration``).
      2. ``training_step`` then samples its batch, so it may contain the transitions of step 1.
         The agent reads the batch from the dataloader iterator itself, so Lightning does not
         prefetch a batch ahead of the collection (the order of the reference's loop).
    When an episode ends (terminated or truncated), its transitions are rated
    (value − return_offset) / return_scale and the episode is logged. The value is the episode's
    return (the reference), or with ``discount`` the scaled discounted return that followed each
    transition (see ``duet.callbacks.rates``). Training stops when the mean return of the last
    ``window`` episodes reaches ``stop_mean_return``, after ``max_episodes`` episodes, or once
    ``max_env_steps`` transitions (prefill included, all processes together) were collected.
    Before training, ``prefill_steps`` random steps fill the buffer.

    Vector envs reset an env on the step after its episode ended (gymnasium's next-step
    autoreset); that step yields no transition. When every env ended at once (always so with one
    env) the reset step is taken at once, so each iteration still collects a real transition.
    """

    def __init__(
        self,
        env_id: str = "CartPole-v1",
        env_kwargs: dict | None = None,
        num_envs: int = 1,
        seed: int = 0,
        prefill_steps: int = 100_000,
        steps_per_iteration: int = 1,
        explore_start: float = 1.0,
        explore_stop: float = 0.01,
        decay_rate: float = 1e-4,
        explore_hold: int = 1,
        return_scale: float = 500.0,
        return_offset: float = 0.0,
        discount: float | None = None,
        stop_mean_return: float | None = 500.0,
        max_episodes: int | None = 1_111,
        max_env_steps: int | None = None,
        window: int = 100,
        vectorization_mode: str | None = None,
    ) -> None:
        for name, value in (
            ("num_envs", num_envs),
            ("steps_per_iteration", steps_per_iteration),
            ("window", window),
        ):
            settings.at_least("GymCollector", name, value, 1)
        settings.at_least("GymCollector", "prefill_steps", prefill_steps, 0)
        self.exploration = Exploration(
            num_envs, explore_start, explore_stop, decay_rate, explore_hold
        )
        settings.positive("GymCollector", "return_scale", return_scale)
        if discount is not None:
            note = ", or null to rate by the episode's return"
            settings.between("GymCollector", "discount", discount, 0, 1, closed=False, note=note)
        settings.at_least("GymCollector", "max_episodes", max_episodes, 1, optional=True)
        settings.at_least("GymCollector", "max_env_steps", max_env_steps, 1, optional=True)
        if max_env_steps is not None and max_env_steps <= prefill_steps:
            raise ValueError(
                f"GymCollector max_env_steps={max_env_steps} is not above prefill_steps="
                f"{prefill_steps}: the prefill would use the whole budget and the run stop before "
                "training; raise max_env_steps or lower prefill_steps."
            )
        self.env_kwargs = dict(env_kwargs or {})
        threshold = check_environment(env_id, self.env_kwargs)
        if discount is None:
            check_rate_range(env_id, threshold, return_offset, return_scale)
        self.env_id = env_id
        self.num_envs = num_envs
        self.seed = seed
        self.prefill_steps = prefill_steps
        self.steps_per_iteration = steps_per_iteration
        self.tracker = EpisodeTracker(num_envs, discount, return_offset, return_scale)
        self.stop_mean_return = stop_mean_return
        self.max_episodes = max_episodes
        self.max_env_steps = max_env_steps
        self.window = window
        self.vectorization_mode = vectorization_mode
        self.envs: gym.vector.VectorEnv | None = None
        self.rng = np.random.default_rng([seed, 0])
        self.training_steps = 0  # t of the exploration schedule
        self.env_steps = 0  # transitions collected, prefill included
        self.episodes = 0
        self.logged_count = 0  # the episode count last logged for callbacks to monitor
        self.recent_returns: deque[float] = deque(maxlen=window)
        self.history = EpisodeHistory()
        self.latest_losses: dict[str, torch.Tensor] = {}
        self.finished: list[tuple[float, float]] = []

    # ---- set-up ----------------------------------------------------------------------------

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(trainer.datamodule, ExperienceDataModule):
            raise TypeError(
                "GymCollector fills an ExperienceDataModule: set data.class_path to it."
            )
        if self.envs is None:
            self.envs = gym.make_vec(
                self.env_id,
                num_envs=self.num_envs,
                vectorization_mode=self.vectorization_mode,
                **self.env_kwargs,
            )
            # Under DDP every process collects its own experience: other seeds, other episodes.
            self.rng = np.random.default_rng([self.seed, trainer.global_rank])
            self._start_episodes(seed=self.seed + trainer.global_rank * self.num_envs)
        # A collective under DDP: resolved here, on every process.
        self.run_dir = run_folder(trainer)
        state_size = self.envs.single_observation_space.shape[0]
        self.buffer = trainer.datamodule.build_buffer(state_size)
        pl_module.build(state_size, int(self.envs.single_action_space.n))
        pl_module.use_rate_rule(self.tracker.rule)  # for an agent that bootstraps rates

    def _start_episodes(self, seed: int | None = None) -> None:
        self.obs, _ = self.envs.reset(seed=seed)  # (N, S)
        self.prev_action = np.zeros(self.num_envs, dtype=np.int64)
        self.autoresetting = np.zeros(self.num_envs, dtype=bool)
        self.exploration.end_holds(np.ones(self.num_envs, dtype=bool))
        self.tracker.begin()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if len(self.buffer) == 0 and self.prefill_steps > 0:
            self.prefill()

    def prefill(self) -> None:
        """At least ``prefill_steps`` random transitions; then fresh episodes for training."""
        num_actions = int(self.envs.single_action_space.n)
        collected = 0
        explore = np.ones(self.num_envs, dtype=bool)
        while collected < self.prefill_steps:
            _, actions = self.exploration.random_actions(self.rng, explore, num_actions)
            collected += self.step(actions, training=False)
        self._start_episodes()

    # ---- one training iteration ------------------------------------------------------------

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.finished = []  # (return, rate) of the training episodes that end in this iteration
        for _ in range(self.steps_per_iteration):
            self.step(self.choose_actions(pl_module), training=True)
            self.training_steps += self.num_envs
        mean_return, full_windows, episodes, env_steps = self._statistics(trainer)
        if episodes != self.logged_count:
            # For a ModelCheckpoint or EarlyStopping to monitor. Lightning keeps the latest value,
            # so logging when an episode ended anywhere is enough (and cheaper than every step); the
            # count is global, so every process logs at the same steps.
            self.logged_count = episodes
            running = {f"episode/mean_return_{self.window}": mean_return, "episode/count": episodes}
            pl_module.log_dict(running, logger=False, batch_size=1)
        for episode_return, rate in self.finished:
            self._log_episode(pl_module, episode_return, rate, mean_return, episodes)
        reached = self.stop_mean_return is not None and full_windows
        if reached and mean_return >= self.stop_mean_return:
            trainer.should_stop = True
        if self.max_episodes is not None and episodes >= self.max_episodes:
            trainer.should_stop = True
        if self.max_env_steps is not None and env_steps >= self.max_env_steps:
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if isinstance(outputs, dict):
            self.latest_losses = outputs  # kept as tensors: read only when an episode ends

    def explore_probability(self) -> float:
        return self.exploration.probability(self.training_steps)

    def choose_actions(self, agent) -> np.ndarray:
        explore = self.rng.random(self.num_envs) < self.explore_probability()
        num_actions = int(self.envs.single_action_space.n)
        explore, actions = self.exploration.random_actions(self.rng, explore, num_actions)
        if not explore.all():
            states = torch.as_tensor(self.obs, dtype=torch.float32)
            greedy = agent.greedy_actions(states, torch.as_tensor(self.prev_action)).cpu().numpy()
            actions = np.where(explore, actions, greedy)
        return actions

    def step(self, actions: np.ndarray, training: bool) -> int:
        """One vector step with ``actions`` (N,); returns how many transitions it stored."""
        next_obs, rewards, terminated, truncated, _ = self.envs.step(actions)
        stepped = ~self.autoresetting  # envs whose step was a transition, not a reset
        real = stepped.nonzero()[0]
        reward = rewards.take(real)
        slots = self.buffer.add(  # take(): a gather without the cost of fancy indexing
            episode=self.tracker.episode_id.take(real),
            prev_action=self.prev_action.take(real),
            state=self.obs.take(real, axis=0),
            action=actions.take(real),
            next_state=next_obs.take(real, axis=0),
            reward=reward,
            terminated=terminated.take(real),
            truncated=truncated.take(real),
        )
        self.tracker.record(real, slots, reward)
        ended = (terminated | truncated) & stepped
        self.prev_action = np.where(ended | self.autoresetting, 0, actions)  # 0 starts an episode
        # A new episode explores afresh; so does one after a reset step, whose action was ignored.
        self.exploration.end_holds(ended | self.autoresetting)
        self.obs = next_obs
        self.autoresetting = ended
        num_ended = int(np.count_nonzero(ended))
        if num_ended:
            envs = ended.nonzero()[0]
            returns, rates = self.tracker.finish(self.buffer, envs, terminated, self.env_id)
            if training:  # prefill episodes only fill the buffer
                self.episodes += num_ended
                self.recent_returns.extend(returns)
                self.finished.extend(zip(returns, rates, strict=True))
            if num_ended == self.num_envs:  # take the reset step now, so the next iteration
                self.obs, *_ = self.envs.step(np.zeros(self.num_envs, dtype=np.int64))  # collects
                self.autoresetting = np.zeros(self.num_envs, dtype=bool)  # a transition
        self.env_steps += len(real)
        return len(real)

    def _statistics(self, trainer: L.Trainer) -> tuple[float, bool, int, int]:
        """(mean return of the last ``window`` episodes, whether every window is full, episodes,
        transitions collected), over all processes, so that all log the same figures and stop
        together."""
        stats = [sum(self.recent_returns), len(self.recent_returns), self.episodes, self.env_steps]
        if trainer.world_size > 1:  # a tensor only to reduce: building one costs time
            stats = torch.tensor(stats, dtype=torch.float64)
            stats = trainer.strategy.reduce(stats, reduce_op="sum").tolist()
        total_return, count, episodes, env_steps = stats
        mean_return = total_return / count if count else float("nan")
        full_windows = count >= self.window * trainer.world_size
        return mean_return, full_windows, int(episodes), int(env_steps)

    def _log_episode(
        self, module, episode_return: float, rate: float, mean: float, count: int
    ) -> None:
        losses = {name: float(value) for name, value in self.latest_losses.items()}
        self.history.append(episode_return, mean, losses)
        metrics = {
            "episode/return": episode_return,  # this process's episode
            f"episode/mean_return_{self.window}": mean,  # over all processes
            "episode/rate": rate,
            "episode/explore_p": self.explore_probability(),
            "episode/count": float(count),  # over all processes
            "episode/env_steps": float(self.env_steps),  # this process's, prefill included
        }
        # Every episode, not only on log steps. It ended in the environment step that starts
        # the iteration about to run.
        log_to_loggers(module.trainer, metrics, iteration=module.trainer.global_step + 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and len(self.history) and not trainer.fast_dev_run:
            self.history.plot(f"{self.run_dir}/episodes.png")

    # ---- checkpoints -----------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The environment id, and every process's collection state on process 0 (a collective
        under DDP): each process explores its own environments with its own generator."""
        return {
            "env_id": self.env_id,  # also read by duet play
            "env_kwargs": self.env_kwargs,
            "processes": gather_processes(self.local_state_dict()),
        }

    def load_state_dict(self, state: dict) -> None:
        saved = (state["env_id"], state.get("env_kwargs", {}))
        if saved != (self.env_id, self.env_kwargs):
            raise ValueError(
                f"The checkpoint's collector ran {saved[0]} with env_kwargs {saved[1]}, this one "
                f"runs {self.env_id} with {self.env_kwargs}: resume with the environment the "
                "checkpoint was trained on."
            )
        local = own_state(state)
        if local is not None:  # else this process keeps the fresh environments of its setup
            self.load_local_state_dict(local)

    def local_state_dict(self) -> dict:
        """This process's state (``collector_state.local_state``)."""
        return local_state(self)

    def load_local_state_dict(self, state: dict) -> None:
        load_local_state(self, state)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.envs is not None:
            self.envs.close()
            self.envs = None
