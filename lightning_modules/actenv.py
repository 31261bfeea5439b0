"""The Act/Env agent: an actor and an environment model trained by four optimizers."""

from collections.abc import Iterable, Iterator
from functools import partial

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.optim import Adam, Optimizer
from torch.optim.swa_utils import AveragedModel

from duet.datamodules import settings
from duet.datamodules.replay import Transitions
from duet.lightning_modules import optimization
from duet.lightning_modules.actenv_bootstrap import (
    RateRule,
    check_rule,
    moving_average,
    with_bootstrapped_rates,
)
from duet.lightning_modules.actenv_compiled import CompiledIteration
from duet.lightning_modules.actenv_stages import (
    env_q_per_action,
    first_stage_losses,
    second_stage_losses,
)
from duet.lightning_modules.checkpoints import check_state_matches
from duet.lightning_modules.finite_guard import FiniteGuard
from duet.lightning_modules.networks.actenv import ActEnvNet
from duet.lightning_modules.optimization import SchedulerInterval, advance_schedules
from duet.lightning_modules.optimizer_settings import (
    configured_settings,
    restore_configured_settings,
)
from duet.lightning_modules.steps import (
    average_gradients,
    averaged_over_processes,
    count_step,
    logging_due,
    manual_gradient_sync,
    record_module_class,
    step_uncounted,
)

OPTIMIZER_NAMES = ("a_opt", "e_opt", "a_opt2", "e_opt2")


def reference_actenv_adam(params: Iterable) -> Optimizer:
    """Adam(lr=1e-4), the reference's optimizer for all four updates (fused: the same update in
    one kernel)."""
    return Adam(params, lr=1e-4, fused=True)


def trainable(network: nn.Module) -> list[nn.Parameter]:
    return [p for p in network.parameters() if p.requires_grad]


class ActEnvAgent(L.LightningModule):
    """Act(state, previous action) -> (action logits, Q); Env(state, action) -> (next state, Q).

    Each training iteration, on a batch of rated transitions (rate = success of the episode):
      1. one forward pass of both networks;
         a_opt: a_loss = CE(Act action, taken action) + BCE(Act Q, rate), over Act;
         e_opt: e_loss = BCE(Env next state, sigmoid(next state)) + BCE(Env Q, rate), over Env;
      2. a fresh forward pass; both gradients are taken before either step is applied;
         a_opt2: a_loss2 = −mean(Act Q), over Act;
         e_opt2: e_loss2 = mean((Env Q − Act Q)²), over Env.
    Four separate Adam optimizers, as the reference's four ``minimize`` calls each kept their own
    state.

    The GymCollector callback steps the environment before each iteration and calls ``build``
    with the environment's sizes when they are not given, so only ``env_id`` needs to change for
    another environment.

    Every default is the reference's. The reference does not learn CartPole (its greedy policy
    alternates actions whatever the state); ``configs/actenv_cartpole_solved.yaml`` sets the
    options below that make it learn, found by ``duet sweep`` (docs/sweep_actenv_cartpole.md).

    Args:
        state_size, action_size: the environment's observation size and number of actions.
        hidden_size: units of the hidden layer (reference: 8). 8 units cannot hold a value
            function that tells the two CartPole actions apart near the edges; 64 can.
        encode_width: units of the first layer (reference: None, meaning action_size). The
            reference squeezes the 4 CartPole state numbers into 2 units before anything else
            sees them.
        trainable_heads: train the output heads (reference: False: they stay at their
            initialisation, so Q and the action logits are fixed random projections of the
            hidden layer).
        batchnorm_training: let BatchNorm use batch statistics while training (reference: False).
        imitation_weight: weight of the imitation term CE(Act action, taken action) in a_loss
            (reference: 1). Imitating every stored action, good or bad, pulls the actor towards the
            behaviour policy, mostly random exploration; 0 drops it.
        follow_env_q: a_loss2 = CE(Act action, argmax over actions of Env Q(state, action))
            instead of −mean(Act Q) (reference: False). Raising Act's own Q estimate says nothing
            about which action to take; Env's Q is rated per action, so its argmax is the action
            the rated memory says succeeds more often.
        follow_margin: with follow_env_q, learn Env's choice only in states where Env's success
            probabilities of the best and second-best action differ by at least this much (default
            0: every state). Once every episode reaches the time limit, every stored transition is
            rated a success, and in most states Env rates both actions nearly alike; its argmax
            there flips from iteration to iteration, and an actor trained on those labels drifts.
        q_matching_weight: weight of e_loss2 (reference: 1). Pulling Env's per-action Q towards
            Act's Q, which does not see the action, erases the difference between actions that
            follow_env_q reads.
        compile: run each iteration as one ``torch.compile`` graph: both stages' forward and
            backward passes and the four optimizers' Adam updates (``CompiledIteration``;
            default False). The networks are small enough that per-operation overhead is most of
            an eager iteration, which this removes (BENCHMARKS.md has the figures). The first
            iteration runs eagerly, and the graph compiles at the second (on CPU it needs a C++
            compiler). The optimizers must be Adam or AdamW; gradient clipping, schedulers,
            DDP and resuming work as in eager mode, and the updates are the same up to float
            rounding. Callbacks' backward and optimizer-step hooks (``on_before_backward``,
            ``on_after_backward``, ``on_before_optimizer_step``) are not called from the second
            iteration on, as there is no backward call and the gradients never reach ``.grad``.
        optimizer: callable making each of the four optimizers (reference: Adam, lr 1e-4).
        loss_limit: stop training when a loss's magnitude exceeds it (a diverging run; see
            ``FiniteGuard``); None for no limit. NaN and infinity always stop training.
        scheduler: callable taking an optimizer and returning a learning-rate scheduler, given
            each of the four optimizers; None (the reference) for constant rates. Stepped once
            per ``scheduler_interval``, "iteration" or "epoch"; saved in checkpoints.
        act_clip_norm, env_clip_norm: clip the network's gradients to this total 2-norm before
            each of its two optimizers' steps; None (the reference) for no clipping.
        act_ema_decay: act (collect, evaluate, play) with an exponential moving average of Act's
            weights, updated after every iteration with this decay; None (the reference) acts
            with Act itself. Act's weights keep moving after the policy is solved, and a single
            iteration can flip its greedy action in states the memory rarely visits; the
            average follows the trend of many iterations.
        bootstrap_target_decay: learn each transition's rate from its own reward and the rate
            of the state it led to, as a target Env (an exponential moving average of Env's
            weights with this decay) rates that state's best action: one-step Q-learning on
            the collector's rate scale (``actenv_bootstrap``; needs ``GymCollector.discount``).
            None (the reference) learns the rates the collector gave: what followed in the
            episode, under the exploring policy that collected it. Those say how an action
            turned out when the policy that followed was as good as it was then; on Acrobot a
            policy that swings up slowly keeps rating its own actions by its slow swing-ups.
    """

    evaluation_command = "duet play CHECKPOINT (greedy episodes, optionally recorded)"

    def __init__(
        self,
        state_size: int | None = None,
        action_size: int | None = None,
        hidden_size: int = 8,
        encode_width: int | None = None,
        trainable_heads: bool = False,
        batchnorm_training: bool = False,
        imitation_weight: float = 1.0,
        follow_env_q: bool = False,
        follow_margin: float = 0.0,
        q_matching_weight: float = 1.0,
        compile: bool = False,
        optimizer: OptimizerCallable = reference_actenv_adam,
        loss_limit: float | None = 1e6,
        scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: SchedulerInterval = "iteration",
        act_clip_norm: float | None = None,
        env_clip_norm: float | None = None,
        act_ema_decay: float | None = None,
        bootstrap_target_decay: float | None = None,
    ) -> None:
        super().__init__()
        clip_norms = dict(act_clip_norm=act_clip_norm, env_clip_norm=env_clip_norm)
        optimization.check_options("ActEnvAgent", scheduler_interval, clip_norms)
        for name, value in (("state_size", state_size), ("action_size", action_size)):
            settings.at_least("ActEnvAgent", name, value, 1, optional=True)
        settings.at_least("ActEnvAgent", "hidden_size", hidden_size, 1)
        settings.at_least("ActEnvAgent", "encode_width", encode_width, 1, optional=True)
        settings.at_least("ActEnvAgent", "imitation_weight", imitation_weight, 0)
        settings.at_least("ActEnvAgent", "q_matching_weight", q_matching_weight, 0)
        settings.between("ActEnvAgent", "follow_margin", follow_margin, 0, 1)
        if follow_margin > 0 and not follow_env_q:
            raise ValueError(
                f"ActEnvAgent: follow_margin={follow_margin} needs follow_env_q=true (it selects "
                "the states where the actor follows Env's Q); set follow_env_q or drop it."
            )
        settings.learning_rates("ActEnvAgent", "optimizer", optimizer)
        for name, value, note in (
            ("act_ema_decay", act_ema_decay, "act with Act itself"),
            ("bootstrap_target_decay", bootstrap_target_decay, "learn the collector's rates"),
        ):
            if value is not None:
                note = f", or null to {note}"
                settings.between("ActEnvAgent", name, value, 0, 1, closed=False, note=note)
        if loss_limit is not None:
            settings.positive("ActEnvAgent", "loss_limit", loss_limit)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.automatic_optimization = False
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        # In the optimizers' order: a_opt (Act), e_opt (Env), a_opt2 (Act), e_opt2 (Env).
        self.clip_norms = [act_clip_norm, env_clip_norm, act_clip_norm, env_clip_norm]
        self.act: ActEnvNet | None = None
        self.env: ActEnvNet | None = None
        self.act_ema: AveragedModel | None = None
        self.env_target: AveragedModel | None = None  # with bootstrap_target_decay
        self.rate_rule: RateRule | None = None  # the collector's, given by use_rate_rule
        self.compiled_iteration: CompiledIteration | None = None  # made at fit start
        self.finite_guard = FiniteGuard(loss_limit)
        if state_size is not None and action_size is not None:
            self.build(state_size, action_size)

    def build(self, state_size: int, action_size: int) -> None:
        """Create both networks for an environment's sizes (recorded in the hyperparameters)."""
        if self.act is not None:
            if (state_size, action_size) != (self.hparams.state_size, self.hparams.action_size):
                raise ValueError(
                    f"The agent was built for state_size={self.hparams.state_size}, action_size="
                    f"{self.hparams.action_size}, but the environment has {state_size} and "
                    f"{action_size}. Drop model.state_size/action_size to take the environment's."
                )
            return
        self.hparams.update(state_size=state_size, action_size=action_size)
        options = dict(
            hidden_size=self.hparams.hidden_size,
            width=self.hparams.encode_width,
            trainable_heads=self.hparams.trainable_heads,
            batchnorm_training=self.hparams.batchnorm_training,
        )
        self.act = ActEnvNet(state_size, action_size, out_size=action_size, **options)
        self.env = ActEnvNet(state_size, action_size, out_size=state_size, **options)
        if self.hparams.act_ema_decay is not None:
            self.act_ema = moving_average(self.act, self.hparams.act_ema_decay)
        if self.hparams.bootstrap_target_decay is not None:
            self.env_target = moving_average(self.env, self.hparams.bootstrap_target_decay)

    def use_rate_rule(self, rule: RateRule) -> None:
        """How the collector rates transitions (given at its setup; checked at fit start)."""
        self.rate_rule = rule

    def setup(self, stage: str) -> None:
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            raise ValueError(
                "ActEnvAgent does not train with a float16 loss scaler (trainer.precision "
                f"{self.trainer.precision}): each stage steps two optimizers from one backward "
                "pass, and Lightning updates the scale after each step, so the second would be "
                "unscaled wrongly. Use trainer.precision bf16-mixed or 32-true."
            )

    def on_fit_start(self) -> None:
        if self.env_target is not None:
            check_rule(self.rate_rule, self.hparams.bootstrap_target_decay)
        self.optimizer_settings = configured_settings(self.trainer.optimizers)  # before a resume
        if self.hparams.compile:
            CompiledIteration.check_optimizers(self.trainer.optimizers)
            one_process = self.trainer.world_size == 1
            average = None if one_process else partial(averaged_over_processes, self)
            self.compiled_iteration = CompiledIteration(
                self.act, self.env, self.clip_norms, average
            )

    def on_train_start(self) -> None:  # after a resume restored the optimizers
        names = [f"optimizer ({name})" for name in OPTIMIZER_NAMES]
        restore_configured_settings(self.trainer.optimizers, self.optimizer_settings, names)

    def configure_optimizers(self):
        if self.act is None:
            raise RuntimeError(
                "ActEnvAgent has no networks: give model.state_size and model.action_size, or add "
                "a GymCollector to trainer.callbacks to take them from the environment."
            )
        act, env = trainable(self.act), trainable(self.env)
        a_opt, e_opt = self.optimizer(act), self.optimizer(env)
        a_opt2, e_opt2 = self.optimizer(act), self.optimizer(env)
        optimizers = (a_opt, e_opt, a_opt2, e_opt2)
        makers = {f"scheduler ({name})": self.scheduler for name in OPTIMIZER_NAMES}
        schedulers = optimization.scheduler_configs("ActEnvAgent", optimizers, makers)
        return optimization.optimizers_with_schedulers(optimizers, schedulers)

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        optimization.clip_gradients(self, optimizer, self.clip_norms)

    @property
    def acting_network(self) -> ActEnvNet:
        """The network whose greedy actions the agent takes: Act, or its average."""
        return self.act if self.act_ema is None else self.act_ema.module

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
        return env_q_per_action(self.env, states, self.hparams.action_size)

    def training_step(self, dataloader_iter: Iterator) -> dict[str, Tensor]:
        # Reading the iterator here, after the collector's on_train_batch_start, means the batch
        # is sampled after this iteration's environment step (Lightning prefetches nothing).
        batch, _, _ = next(dataloader_iter)
        batch: Transitions = batch.to(self.device)
        if self.env_target is not None:
            action_size = self.hparams.action_size
            batch = with_bootstrapped_rates(batch, self.rate_rule, self.env_target, action_size)
        advance_schedules(self, self.scheduler_interval)  # a new epoch's rates
        with manual_gradient_sync(self):  # each network's gradients averaged once per stage
            compiled = self.compiled_iteration
            if compiled is not None and compiled.ready(self.trainer.optimizers):
                losses = compiled(self.trainer.optimizers, batch, self.stage_options())
                count_step(self.optimizers()[0])  # as a_opt.step() counts in eager mode
            else:
                losses = self.eager_iteration(batch)
        advance_schedules(self, self.scheduler_interval)  # the next iteration's rates
        for average, network in ((self.act_ema, self.act), (self.env_target, self.env)):
            if average is not None:
                average.update_parameters(network)
        names = ("train/a_loss", "train/e_loss", "train/a_loss2", "train/e_loss2")
        losses = dict(zip(names, losses, strict=True))
        self.finite_guard.after_iteration(self, losses)
        if logging_due(self):
            self.log_dict(losses, batch_size=len(batch.action))
        return {name: loss.detach() for name, loss in losses.items()}

    def stage_options(self) -> tuple[tuple, tuple]:
        """The arguments after the batch of ``first_stage_losses`` and ``second_stage_losses``."""
        h = self.hparams
        return (h.imitation_weight,), (h.follow_env_q, h.q_matching_weight, h.follow_margin)

    def eager_iteration(self, batch: Transitions) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The four updates, as written in the class docstring; the four losses."""
        a_opt, e_opt, a_opt2, e_opt2 = self.optimizers()
        first_options, second_options = self.stage_options()

        # 1. a_opt and e_opt from one forward pass. a_loss depends on Act alone and e_loss on Env
        #    alone, so one backward pass of their sum gives each optimizer its own gradient.
        a_loss, e_loss = first_stage_losses(self.act, self.env, batch, *first_options)
        a_opt.zero_grad(set_to_none=True)
        e_opt.zero_grad(set_to_none=True)
        self.manual_backward(a_loss + e_loss)
        average_gradients(self, self.act, self.env)
        a_opt.step()  # the one counted step of this iteration
        step_uncounted(e_opt)

        # 2. a_opt2 and e_opt2 from a fresh forward pass, both gradients taken before either
        #    step. e_loss2 is minimised over Env only.
        a_loss2, e_loss2 = second_stage_losses(self.act, self.env, batch, *second_options)
        a_opt2.zero_grad(set_to_none=True)
        e_opt2.zero_grad(set_to_none=True)
        self.manual_backward(a_loss2 + e_loss2)
        average_gradients(self, self.act, self.env)
        step_uncounted(a_opt2)
        step_uncounted(e_opt2)
        return a_loss, e_loss, a_loss2, e_loss2

    def on_train_end(self) -> None:
        self.finite_guard.check(self)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.finite_guard.before_checkpoint(self, checkpoint)
        record_module_class(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_state_matches(self, checkpoint)
