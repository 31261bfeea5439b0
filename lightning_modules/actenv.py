"""The Act/Env agent: an actor and an environment model trained by four optimizers."""

from collections.abc import Iterator
from functools import partial
from typing import ClassVar

import torch
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.plugins import MixedPrecision
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from duet.datamodules import option_checks
from duet.datamodules.lightning_internals import count_step, step_uncounted
from duet.datamodules.rating import SuccessRating
from duet.datamodules.replay import Transitions
from duet.lightning_modules.actenv_bootstrap import (
    check_rating,
    moving_average,
    with_bootstrapped_ratings,
)
from duet.lightning_modules.actenv_compiled import CompiledIteration
from duet.lightning_modules.actenv_options import ActEnvLosses, ActEnvNetworks, AgentOptimization
from duet.lightning_modules.actenv_stages import (
    env_q_per_action,
    first_stage_losses,
    second_stage_losses,
)
from duet.lightning_modules.manual_optimization import ManualOptimizationModule, OptimizerPlan
from duet.lightning_modules.networks.actenv import ActEnvNet
from duet.lightning_modules.option_groups import as_group, stored_settings
from duet.lightning_modules.reference_optimizers import ActEnvAdam
from duet.lightning_modules.steps import (
    average_gradients,
    averaged_over_processes,
    manual_gradient_sync,
)

OPTIMIZER_NAMES = ("a_opt", "e_opt", "a_opt2", "e_opt2")


reference_actenv_adam = ActEnvAdam  # its name before 0.3, which saved configs may hold


def trainable(network: nn.Module) -> list[nn.Parameter]:
    return [p for p in network.parameters() if p.requires_grad]


class ActEnvAgent(ManualOptimizationModule):
    """Act(state, previous action) -> (action logits, Q); Env(state, action) -> (next state, Q).

    Each training iteration, on a batch of rated transitions (rating = the success target in
    [0, 1] the collector gave, ``duet.datamodules.rating``; the batch's ``rate`` field):
      1. one forward pass of both networks;
         a_opt: a_loss = CE(Act action, taken action) + BCE(Act Q, rating), over Act;
         e_opt: e_loss = BCE(Env next state, sigmoid(next state)) + BCE(Env Q, rating), over Env;
      2. a fresh forward pass; both gradients are taken before either step is applied;
         a_opt2: a_loss2 = −mean(Act Q), over Act;
         e_opt2: e_loss2 = mean((Env Q − Act Q)²), over Env.
    Four separate Adam optimizers, as the reference's four ``minimize`` calls each kept their own
    state.

    The GymCollector callback steps the environment before each iteration and calls ``build``
    with the environment's sizes when they are not given, so only ``env_id`` needs to change for
    another environment (the agent is a ``CollectingAgent``: ``collecting_agent.py``).

    Every default is the reference's. The reference does not learn CartPole (its greedy policy
    alternates actions whatever the state); ``configs/actenv_cartpole_solved.yaml`` sets the
    options that make it learn; why each helps is in docs/actenv_options.md.

    Args:
        state_size, action_size: the environment's observation size and number of actions
            (None: taken from the environment when the collector builds the networks).
        network: the shape of Act and Env (``ActEnvNetworks``).
        losses: the terms of their losses (``ActEnvLosses``).
        optimizer: callable making each of the four optimizers (reference: Adam, lr 1e-4).
        optimization: the scheduler, gradient clipping and the loss limit
            (``AgentOptimization``).
        act_ema_decay: act (collect, evaluate, play) with an exponential moving average of Act's
            weights, updated after every iteration with this decay; None (the reference) acts
            with Act itself.
        bootstrap_target_decay: learn each transition's success target from its own reward and
            the target of the state it led to, as a target Env (an exponential moving average
            of Env's weights with this decay) rates that state's best action: one-step
            Q-learning on the collector's rating scale (``actenv_bootstrap``; needs
            ``collector.rating.discount``). None (the reference) learns the targets the
            collector gave.
        compile: run each iteration as one ``torch.compile`` graph (``CompiledIteration``;
            default False): both stages' forward and backward passes and the four Adam updates.
            The first iteration runs eagerly and the graph compiles at the second (on CPU it
            needs a C++ compiler). The optimizers must be Adam or AdamW; clipping, schedulers,
            DDP and resuming work as in eager mode, the updates equal up to float rounding.
            Callbacks' backward and optimizer-step hooks are not called from the second
            iteration on (there is no backward call; gradients never reach ``.grad``).
    """

    evaluation_command = "duet play CHECKPOINT (greedy episodes, optionally recorded)"
    OPTION_GROUPS: ClassVar[dict[str, type]] = {
        "network": ActEnvNetworks,
        "losses": ActEnvLosses,
        "optimization": AgentOptimization,
    }

    def __init__(
        self,
        state_size: int | None = None,
        action_size: int | None = None,
        network: ActEnvNetworks = ActEnvNetworks(),
        losses: ActEnvLosses = ActEnvLosses(),
        optimizer: OptimizerCallable = ActEnvAdam,
        optimization: AgentOptimization = AgentOptimization(),
        act_ema_decay: float | None = None,
        bootstrap_target_decay: float | None = None,
        compile: bool = False,
    ) -> None:
        network = as_group(ActEnvNetworks, network)
        losses = as_group(ActEnvLosses, losses)
        optimization = as_group(AgentOptimization, optimization)
        super().__init__(optimization)
        owner = "ActEnvAgent"
        for name, value in (("state_size", state_size), ("action_size", action_size)):
            option_checks.at_least(owner, name, value, 1, optional=True)
        network.check(owner)
        losses.check(owner)
        option_checks.learning_rates(owner, "optimizer", optimizer)
        for name, decay, note in (
            ("act_ema_decay", act_ema_decay, "act with Act itself"),
            ("bootstrap_target_decay", bootstrap_target_decay, "learn the collector's targets"),
        ):
            if decay is not None:
                note = f", or null to {note}"
                option_checks.between(owner, name, decay, 0, 1, closed=False, note=note)
        self.save_hyperparameters(ignore=["optimizer"])
        for name, group in (
            ("network", network),
            ("losses", losses),
            ("optimization", optimization),
        ):
            self.hparams[name] = stored_settings(group)
        self.state_size, self.action_size = state_size, action_size  # build sets them when None
        self.network_options, self.loss_options = network, losses
        self.compile_iterations = compile  # not self.compile: nn.Module.compile is a method
        self.act_ema_decay, self.bootstrap_target_decay = act_ema_decay, bootstrap_target_decay
        self.optimizer = optimizer
        self.optimization = optimization
        self.act: ActEnvNet | None = None
        self.env: ActEnvNet | None = None
        self.act_ema: AveragedModel | None = None
        self.env_target: AveragedModel | None = None  # with bootstrap_target_decay
        self.success_rating: SuccessRating | None = None  # given by use_success_rating
        self.compiled_iteration: CompiledIteration | None = None  # made at fit start
        if state_size is not None and action_size is not None:
            self.build(state_size, action_size)

    def build(self, state_size: int, action_size: int) -> None:
        """Create both networks for an environment's sizes (recorded in the hyperparameters)."""
        if self.act is not None:
            if (state_size, action_size) != (self.state_size, self.action_size):
                raise ValueError(
                    f"The agent was built for state_size={self.state_size}, action_size="
                    f"{self.action_size}, but the environment has {state_size} and "
                    f"{action_size}. Drop model.state_size/action_size to take the environment's."
                )
            return
        self.hparams.update(state_size=state_size, action_size=action_size)
        self.state_size, self.action_size = state_size, action_size
        options = self.network_options
        network = partial(
            ActEnvNet,
            state_size,
            action_size,
            hidden_size=options.hidden_size,
            width=options.encode_width,
            trainable_heads=options.trainable_heads,
            batchnorm_training=options.batchnorm_training,
        )
        self.act = network(out_size=action_size)
        self.env = network(out_size=state_size)
        if self.act_ema_decay is not None:
            self.act_ema = moving_average(self.act, self.act_ema_decay)
        if self.bootstrap_target_decay is not None:
            self.env_target = moving_average(self.env, self.bootstrap_target_decay)

    def networks(self) -> tuple[ActEnvNet, ActEnvNet]:
        """(Act, Env) as ``build`` made them; a RuntimeError saying how when it has not run."""
        if self.act is None or self.env is None:
            raise RuntimeError(
                "ActEnvAgent has no networks: give model.state_size and model.action_size, or add "
                "a collector: section (a GymCollector) to take them from the environment."
            )
        return self.act, self.env

    @property
    def num_actions(self) -> int:
        """The environment's number of actions: the condition both networks are built for."""
        return self.networks()[1].condition_size

    def use_success_rating(self, rating: SuccessRating) -> None:
        """How the collector rates transitions (given at its setup; checked at fit start)."""
        self.success_rating = rating

    def setup(self, stage: str) -> None:
        plugin = self.trainer.precision_plugin
        if isinstance(plugin, MixedPrecision) and plugin.scaler is not None:
            raise ValueError(
                "ActEnvAgent does not train with a float16 loss scaler (trainer.precision "
                f"{self.trainer.precision}): each stage steps two optimizers from one backward "
                "pass, and Lightning updates the scale after each step, so the second would be "
                "unscaled wrongly. Use trainer.precision bf16-mixed or 32-true."
            )

    def on_fit_start(self) -> None:
        super().on_fit_start()
        decay = self.bootstrap_target_decay  # not None whenever env_target is set
        if self.env_target is not None and decay is not None:
            check_rating(self.success_rating, decay)
        if self.compile_iterations:
            CompiledIteration.check_optimizers(self.trainer.optimizers)
            one_process = self.trainer.world_size == 1
            average = None if one_process else partial(averaged_over_processes, self)
            act, env = self.networks()
            self.compiled_iteration = CompiledIteration(act, env, self.clip_norms, average)

    def optimizer_plans(self) -> list[OptimizerPlan]:
        """a_opt (Act), e_opt (Env), a_opt2 (Act), e_opt2 (Env): each made by ``optimizer``,
        with ``scheduler``, clipped to its network's norm."""
        act_network, env_network = self.networks()
        act = (trainable(act_network), self.optimization.act_clip_norm)
        env = (trainable(env_network), self.optimization.env_clip_norm)
        plans = zip(OPTIMIZER_NAMES, (act, env, act, env), strict=True)
        return [
            OptimizerPlan(
                self.optimizer(parameters),
                f"optimizer ({name})",
                self.optimization.scheduler,
                f"optimization.scheduler ({name})",
                clip_norm,
            )
            for name, (parameters, clip_norm) in plans
        ]

    @property
    def acting_network(self) -> ActEnvNet:
        """The network whose greedy actions the agent takes: Act, or its average."""
        act, _ = self.networks()
        if self.act_ema is None:
            return act
        average = self.act_ema.module
        assert isinstance(average, ActEnvNet)  # AveragedModel types its copy as an nn.Module
        return average

    @torch.no_grad()
    def greedy_actions(self, states: Tensor, prev_actions: Tensor) -> Tensor:
        """(N, S) states and (N,) previous actions -> (N,) argmax of the acting network's action
        logits (Act's, or with ``act_ema_decay`` its average's)."""
        act = self.acting_network
        # BatchNorm must use its running statistics on a few states. eval()/train() cost more
        # than this forward pass, so they are left out where it uses them anyway (the reference).
        batch_statistics = act.training and act.batchnorm_training
        if batch_statistics:
            act.eval()
        action_logits, _ = act(states.to(self.device), prev_actions.to(self.device))
        if batch_statistics:
            act.train()
        return action_logits.argmax(dim=1)

    @torch.no_grad()
    def env_q_per_action(self, states: Tensor) -> Tensor:
        """(B, S) states -> (B, A) Env's Q logit for every action, in one forward pass."""
        _, env = self.networks()
        return env_q_per_action(env, states, self.num_actions)

    def training_step(self, dataloader_iter: Iterator) -> dict[str, Tensor]:
        # Reading the iterator here, after the collector's on_train_batch_start, means the batch
        # is sampled after this iteration's environment step (Lightning prefetches nothing).
        sampled, _, _ = next(dataloader_iter)
        batch: Transitions = sampled.to(self.device)
        if self.env_target is not None:
            rating, target = self.success_rating, self.env_target
            assert rating is not None  # on_fit_start's check_rating refused None
            batch = with_bootstrapped_ratings(batch, rating, target, self.num_actions)
        self.advance_schedules()  # a new epoch's rates
        with manual_gradient_sync(self):  # each network's gradients averaged once per stage
            compiled = self.compiled_iteration
            if compiled is not None and compiled.ready(self.trainer.optimizers):
                losses = compiled(self.trainer.optimizers, batch, self.stage_options())
                count_step(self.optimizer_list()[0])  # as a_opt.step() counts in eager mode
            else:
                losses = self.eager_iteration(batch)
        self.advance_schedules()  # the next iteration's rates
        act, env = self.networks()
        for average, network in ((self.act_ema, act), (self.env_target, env)):
            if average is not None:
                average.update_parameters(network)
        names = ("train/a_loss", "train/e_loss", "train/a_loss2", "train/e_loss2")
        named_losses = dict(zip(names, losses, strict=True))
        self.finish_iteration(named_losses, batch_size=len(batch.action))
        return {name: loss.detach() for name, loss in named_losses.items()}

    def stage_options(self) -> tuple[tuple, tuple]:
        """The arguments after the batch of ``first_stage_losses`` and ``second_stage_losses``."""
        losses = self.loss_options
        second = (losses.follow_env_q, losses.q_matching_weight, losses.follow_margin)
        return (losses.imitation_weight,), second

    def eager_iteration(self, batch: Transitions) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The four updates, as written in the class docstring; the four losses."""
        a_opt, e_opt, a_opt2, e_opt2 = self.optimizer_list()
        first_options, second_options = self.stage_options()
        act, env = self.networks()

        # 1. a_opt and e_opt from one forward pass. a_loss depends on Act alone and e_loss on Env
        #    alone, so one backward pass of their sum gives each optimizer its own gradient.
        a_loss, e_loss = first_stage_losses(act, env, batch, *first_options)
        a_opt.zero_grad(set_to_none=True)
        e_opt.zero_grad(set_to_none=True)
        self.manual_backward(a_loss + e_loss)
        average_gradients(self, act, env)
        a_opt.step()  # the one counted step of this iteration
        step_uncounted(e_opt)

        # 2. a_opt2 and e_opt2 from a fresh forward pass, both gradients taken before either
        #    step. e_loss2 is minimised over Env only.
        a_loss2, e_loss2 = second_stage_losses(act, env, batch, *second_options)
        a_opt2.zero_grad(set_to_none=True)
        e_opt2.zero_grad(set_to_none=True)
        self.manual_backward(a_loss2 + e_loss2)
        average_gradients(self, act, env)
        step_uncounted(a_opt2)
        step_uncounted(e_opt2)
        return a_loss, e_loss, a_loss2, e_loss2
