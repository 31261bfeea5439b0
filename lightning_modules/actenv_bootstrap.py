"""Bootstrapped rates: a transition rated from its own reward and Env's rate of the state it led
to (one-step Q-learning on the rate scale), instead of from what followed in its episode."""

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from duet.datamodules.replay import Transitions
from duet.lightning_modules.actenv_stages import env_q_per_action
from duet.lightning_modules.networks.actenv import ActEnvNet


class RateRule(NamedTuple):
    """How the collector turns values into rates: rate = (value − offset) / scale, the value
    v_t = (1 − discount)·r_t + discount·v_{t+1} (``duet.callbacks.rates.transition_values``)."""

    discount: float | None
    offset: float
    scale: float


def bootstrapped_rates(
    rule: RateRule, rewards: Tensor, terminated: Tensor, next_rates: Tensor
) -> Tensor:
    """(B,) rewards, termination flags and rates of the next states -> (B,) rates.

    On the rate scale v_t = (1 − γ)·r_t + γ·v_{t+1} reads
    rate_t = (1 − γ)·(r_t − offset)/scale + γ·rate_{t+1}. After a termination nothing follows
    (v = 0, so rate_{t+1} = −offset/scale); an episode cut off by a time limit goes on from its
    next state, whose rate is bootstrapped like any other.
    """
    gamma = rule.discount
    after_end = torch.full_like(next_rates, -rule.offset / rule.scale)
    following = torch.where(terminated, after_end, next_rates)
    rates = (1.0 - gamma) * (rewards - rule.offset) / rule.scale + gamma * following
    return rates.clamp(0.0, 1.0)  # rounding must not push a BCE target out of [0, 1]


def moving_average(network: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``network``'s weights and buffers, without gradients,
    starting as a copy; advance it with ``update_parameters(network)``."""
    average = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    average.requires_grad_(False)
    average.update_parameters(network)
    return average


@torch.no_grad()
def target_next_rates(target: AveragedModel, batch: Transitions, num_actions: int) -> Tensor:
    """(B,) the target Env's rate of each next state: the sigmoid of its best action's Q. The
    target is an average of Env's weights, the slowly moving target of Q-learning, so that Env
    does not chase its own latest estimate."""
    env: ActEnvNet = target.module
    batch_statistics = env.training and env.batchnorm_training
    if batch_statistics:  # its running statistics, as when acting
        env.eval()
    q = env_q_per_action(env, batch.next_state, num_actions)  # (B, A)
    if batch_statistics:
        env.train()
    return q.max(dim=1).values.sigmoid()


def check_rule(rule: RateRule | None, decay: float) -> RateRule:
    """The collector's rule, refused where it cannot bootstrap (``decay``: the agent's
    bootstrap_target_decay, named in the message)."""
    option = f"ActEnvAgent: bootstrap_target_decay={decay}"
    if rule is None:
        raise RuntimeError(
            f"{option} rates transitions as the collector does, but no GymCollector said how: "
            "add one to trainer.callbacks, or set bootstrap_target_decay to null."
        )
    if rule.discount is None:
        raise ValueError(
            f"{option} needs GymCollector.discount (e.g. 0.97), which is null: an episode's "
            "undiscounted return cannot be bootstrapped step by step."
        )
    return rule


def with_bootstrapped_rates(
    batch: Transitions, rule: RateRule, target: AveragedModel, num_actions: int
) -> Transitions:
    """The batch with its rates replaced by bootstrapped ones (what both Q heads then learn)."""
    next_rates = target_next_rates(target, batch, num_actions)
    rates = bootstrapped_rates(rule, batch.reward, batch.terminated, next_rates)
    return batch._replace(rate=rates.to(batch.rate.dtype))
