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
from duet.callbacks.exploration import Exploration, ExplorationSchedule
from duet.callbacks.gym_checks import check_environment
from duet.callbacks.run_folder import run_folder
from duet.callbacks.stopping import StoppingRules
from duet.datamodules import option_checks
from duet.datamodules.experience import ExperienceDataModule
from duet.datamodules.process_state import gather_processes, own_state
from duet.datamodules.rating import SuccessRating
from duet.datamodules.trainer_attributes import attached_datamodule, fast_dev_run
from duet.lightning_modules.collecting_agent import CollectingAgent, check_collecting_agent


class GymCollector(L.Callback):
    """Owns ``num_envs`` copies of ``env_id`` (a Gymnasium vector env: CartPole's native one where
    it exists) and writes their transitions into the ExperienceDataModule's replay buffer. In a
    config it is the top-level ``collector:`` section.

    Order within training iteration k:
      1. ``on_train_batch_start``: ``steps_per_iteration`` vector steps. Each env acts randomly
         with the probability ``exploration`` (``ExplorationSchedule``) gives after t environment
         steps of training, else greedily from the agent given its state and previous action (0
         at the start of every episode). With ``exploration.hold`` k > 1 a random action, once
         drawn, is repeated for k steps of its episode, prefill included (``Exploration``).
      2. ``training_step`` then samples its batch, so it may contain the transitions of step 1.
         The agent reads the batch from the dataloader iterator itself, so Lightning does not
         prefetch a batch ahead of the collection (the order of the reference's loop).
    When an episode ends (terminated or truncated), its transitions get their success ratings
    (``rating``: ``duet.datamodules.rating.SuccessRating``) and the episode is logged. Training
    stops as ``stopping`` (``StoppingRules``) says. Before training, ``prefill_steps`` random
    steps fill the buffer. The agent is a ``CollectingAgent``; the collector builds its networks
    for the environment's sizes and tells it the rating.

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
        exploration: ExplorationSchedule = ExplorationSchedule(),
        rating: SuccessRating = SuccessRating(),
        stopping: StoppingRules = StoppingRules(),
        vectorization_mode: str | None = None,
    ) -> None:
        for name, value in (("num_envs", num_envs), ("steps_per_iteration", steps_per_iteration)):
            option_checks.at_least("GymCollector", name, value, 1)
        option_checks.at_least("GymCollector", "prefill_steps", prefill_steps, 0)
        stopping.check_prefill(prefill_steps)
        self.env_kwargs = dict(env_kwargs or {})
        rating.check_reward_threshold(env_id, check_environment(env_id, self.env_kwargs))
        self.env_id = env_id
        self.num_envs = num_envs
        self.seed = seed
        self.prefill_steps = prefill_steps
        self.steps_per_iteration = steps_per_iteration
        self.exploration = Exploration(num_envs, exploration)
        self.rating = rating
        self.tracker = EpisodeTracker(num_envs, rating)
        self.stopping = stopping
        self.window = stopping.window
        self.vectorization_mode = vectorization_mode
        self.envs: gym.vector.VectorEnv | None = None
        self.rng = np.random.default_rng([seed, 0])
        self.training_steps = 0  # t of the exploration schedule
        self.env_steps = 0  # transitions collected, prefill included
        self.episodes = 0
        self.logged_count = 0  # the episode count last logged for callbacks to monitor
        self.recent_returns: deque[float] = deque(maxlen=self.window)
        self.history = EpisodeHistory()
        self.latest_losses: dict[str, torch.Tensor] = {}
        self.finished: list[tuple[float, float]] = []

    # ---- set-up ----------------------------------------------------------------------------

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        datamodule = attached_datamodule(trainer)
        if not isinstance(datamodule, ExperienceDataModule):
            raise TypeError(
                "GymCollector fills an ExperienceDataModule: set data.class_path to it."
            )
        agent = check_collecting_agent(pl_module, "GymCollector")
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
        observation_space = self.vector_env().single_observation_space
        assert isinstance(observation_space, gym.spaces.Box)  # check_environment refused others
        state_size = observation_space.shape[0]
        self.buffer = datamodule.build_buffer(state_size)
        agent.build(state_size, self.num_actions())
        agent.use_success_rating(self.rating)  # for an agent that bootstraps ratings

    def vector_env(self) -> gym.vector.VectorEnv:
        """The environments that ``setup`` made (or a checkpoint put back)."""
        if self.envs is None:
            raise RuntimeError(
                "GymCollector has no environments: setup makes them and teardown closes them."
            )
        return self.envs

    def num_actions(self) -> int:
        """The size of the environments' Discrete action space."""
        action_space = self.vector_env().single_action_space
        assert isinstance(action_space, gym.spaces.Discrete)  # check_environment refused others
        return int(action_space.n)

    def _start_episodes(self, seed: int | None = None) -> None:
        self.obs, _ = self.vector_env().reset(seed=seed)  # (N, S)
        self.prev_action = np.zeros(self.num_envs, dtype=np.int64)
        self.autoresetting = np.zeros(self.num_envs, dtype=bool)
        self.exploration.end_holds(np.ones(self.num_envs, dtype=bool))
        self.tracker.begin()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if len(self.buffer) == 0 and self.prefill_steps > 0:
            self.prefill()

    def prefill(self) -> None:
        """At least ``prefill_steps`` random transitions; then fresh episodes for training."""
        num_actions = self.num_actions()
        collected = 0
        explore = np.ones(self.num_envs, dtype=bool)
        while collected < self.prefill_steps:
            _, actions = self.exploration.random_actions(self.rng, explore, num_actions)
            collected += self.step(actions, training=False)
        self._start_episodes()

    # ---- one training iteration ------------------------------------------------------------

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.finished = []  # (return, rating) of the training episodes that end in this iteration
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
        for episode_return, rating in self.finished:
            self._log_episode(pl_module, episode_return, rating, mean_return, episodes)
        if self.stopping.reached(mean_return, full_windows, episodes, env_steps):
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if isinstance(outputs, dict):
            self.latest_losses = outputs  # kept as tensors: read only when an episode ends

    def explore_probability(self) -> float:
        return self.exploration.probability(self.training_steps)

    def choose_actions(self, agent: CollectingAgent) -> np.ndarray:
        explore = self.rng.random(self.num_envs) < self.explore_probability()
        explore, actions = self.exploration.random_actions(self.rng, explore, self.num_actions())
        if not explore.all():
            states = torch.as_tensor(self.obs, dtype=torch.float32)
            greedy = agent.greedy_actions(states, torch.as_tensor(self.prev_action)).cpu().numpy()
            actions = np.where(explore, actions, greedy)
        return actions

    def step(self, actions: np.ndarray, training: bool) -> int:
        """One vector step with ``actions`` (N,); returns how many transitions it stored."""
        next_obs, rewards, terminated, truncated, _ = self.vector_env().step(actions)
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
            returns, ratings = self.tracker.finish(self.buffer, envs, terminated, self.env_id)
            if training:  # prefill episodes only fill the buffer
                self.episodes += num_ended
                self.recent_returns.extend(returns)
                self.finished.extend(zip(returns, ratings, strict=True))
            if num_ended == self.num_envs:  # take the reset step now, so that the next
                # iteration collects a transition
                self.obs, *_ = self.vector_env().step(np.zeros(self.num_envs, dtype=np.int64))
                self.autoresetting = np.zeros(self.num_envs, dtype=bool)
        self.env_steps += len(real)
        return len(real)

    def _statistics(self, trainer: L.Trainer) -> tuple[float, bool, int, int]:
        """(mean return of the last ``window`` episodes, whether every window is full, episodes,
        transitions collected), over all processes, so that all log the same figures and stop
        together."""
        stats = [sum(self.recent_returns), len(self.recent_returns), self.episodes, self.env_steps]
        if trainer.world_size > 1:  # a tensor only to reduce: building one costs time
            local = torch.tensor(stats, dtype=torch.float64)
            stats = trainer.strategy.reduce(local, reduce_op="sum").tolist()
        total_return, count, episodes, env_steps = stats
        mean_return = total_return / count if count else float("nan")
        full_windows = count >= self.window * trainer.world_size
        return mean_return, full_windows, int(episodes), int(env_steps)

    def _log_episode(
        self, module, episode_return: float, rating: float, mean: float, count: int
    ) -> None:
        losses = {name: float(value) for name, value in self.latest_losses.items()}
        self.history.append(episode_return, mean, losses)
        metrics = {
            "episode/return": episode_return,  # this process's episode
            f"episode/mean_return_{self.window}": mean,  # over all processes
            "episode/rate": rating,  # the success rating of its first transition
            "episode/explore_p": self.explore_probability(),
            "episode/count": float(count),  # over all processes
            "episode/env_steps": float(self.env_steps),  # this process's, prefill included
        }
        # Every episode, not only on log steps. It ended in the environment step that starts
        # the iteration about to run.
        log_to_loggers(module.trainer, metrics, iteration=module.trainer.global_step + 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and len(self.history) and not fast_dev_run(trainer):
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
