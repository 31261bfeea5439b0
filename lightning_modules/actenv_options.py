"""The Act/Env agent's grouped options. Every default is the reference's; why each non-reference
value helps is in docs/actenv_options.md. In YAML ``network: {hidden_size: 64}``; on the command
line ``--model.network.hidden_size 64``."""

from dataclasses import dataclass
from typing import ClassVar

from lightning.pytorch.cli import LRSchedulerCallable

from duet.datamodules import option_checks
from duet.lightning_modules.manual_optimization import Optimization


@dataclass(frozen=True)
class ActEnvNetworks:
    """The shape of Act and Env (the environment model), ``networks/actenv.py``.

    Args:
        hidden_size: units of the hidden layer (reference: 8).
        encode_width: units of the first layer (reference: None, meaning the number of actions).
        trainable_heads: train the output heads (reference: False: they stay at their
            initialisation, fixed random projections of the hidden layer).
        batchnorm_training: let BatchNorm use batch statistics while training (reference: False).
    """

    hidden_size: int = 8
    encode_width: int | None = None
    trainable_heads: bool = False
    batchnorm_training: bool = False

    def check(self, owner: str) -> None:
        option_checks.at_least(owner, "network.hidden_size", self.hidden_size, 1)
        option_checks.at_least(owner, "network.encode_width", self.encode_width, 1, optional=True)


@dataclass(frozen=True)
class ActEnvLosses:
    """The terms of Act's and Env's losses.

    Args:
        imitation_weight: weight of the imitation term CE(Act action, taken action) in a_loss
            (reference: 1); 0 drops it.
        follow_env_q: a_loss2 = CE(Act action, argmax over actions of Env Q(state, action))
            instead of −mean(Act Q) (reference: False).
        follow_margin: with follow_env_q, learn Env's choice only in states where Env's success
            probabilities of the best and second-best action differ by at least this much
            (default 0: every state).
        q_matching_weight: weight of e_loss2 = mean((Env Q − Act Q)²) (reference: 1).
    """

    imitation_weight: float = 1.0
    follow_env_q: bool = False
    follow_margin: float = 0.0
    q_matching_weight: float = 1.0

    def check(self, owner: str) -> None:
        option_checks.at_least(owner, "losses.imitation_weight", self.imitation_weight, 0)
        option_checks.at_least(owner, "losses.q_matching_weight", self.q_matching_weight, 0)
        option_checks.between(owner, "losses.follow_margin", self.follow_margin, 0, 1)
        if self.follow_margin > 0 and not self.follow_env_q:
            raise ValueError(
                f"{owner}: losses.follow_margin={self.follow_margin} needs "
                "losses.follow_env_q=true (it selects the states where the actor follows Env's "
                "Q); set follow_env_q or drop it."
            )


@dataclass(frozen=True)
class AgentOptimization(Optimization):
    """How the agent's four optimizers are driven.

    Args:
        loss_limit: stop training when a loss's magnitude exceeds it (a diverging run; see
            ``FiniteGuard``); None for no limit. NaN and infinity always stop training.
        scheduler_interval: the scheduler steps once per "iteration" or per "epoch".
        scheduler: callable taking an optimizer and returning a learning-rate scheduler, given
            each of the four optimizers; None (the reference) for constant rates.
        act_clip_norm, env_clip_norm: clip the network's gradients to this total 2-norm before
            each of its two optimizers' steps; None (the reference) for no clipping.
    """

    scheduler: LRSchedulerCallable | None = None
    act_clip_norm: float | None = None
    env_clip_norm: float | None = None

    MAKERS: ClassVar[tuple[str, ...]] = ("scheduler",)
