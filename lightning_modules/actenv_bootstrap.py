"""Bootstrapped success ratings: a transition rated from its own reward and Env's rating of the
state it led to (one-step Q-learning on the rating scale, ``duet.datamodules.rating``), instead of
from what followed in its episode."""

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from duet.datamodules.rating import SuccessRating, bootstrapped_ratings
from duet.datamodules.replay import Transitions
from duet.lightning_modules.actenv_stages import env_q_per_action
from duet.lightning_modules.networks.actenv import ActEnvNet


def moving_average(network: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``network``'s weights and buffers, without gradients,
    starting as a copy; advance it with ``update_parameters(network)``."""
    average = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    average.requires_grad_(False)
    average.update_parameters(network)
    return average


@torch.no_grad()
def target_next_ratings(target: AveragedModel, batch: Transitions, num_actions: int) -> Tensor:
    """(B,) the target Env network's rating of each next state: its best action's sigmoid(Q). The
    target is an average of Env's weights, the slowly moving target of Q-learning, so that Env
    does not chase its own latest estimate."""
    env_network = target.module
    assert isinstance(env_network, ActEnvNet)  # AveragedModel types its copy as an nn.Module
    batch_statistics = env_network.training and env_network.batchnorm_training
    if batch_statistics:  # its running statistics, as when acting
        env_network.eval()
    q = env_q_per_action(env_network, batch.next_state, num_actions)  # (B, A)
    if batch_statistics:
        env_network.train()
    return q.max(dim=1).values.sigmoid()


def check_rating(rating: SuccessRating | None, decay: float) -> SuccessRating:
    """The collector's rating, refused where it cannot bootstrap (``decay``: the agent's
    bootstrap_target_decay, named in the message)."""
    option = f"ActEnvAgent: bootstrap_target_decay={decay}"
    if rating is None:
        raise RuntimeError(
            f"{option} rates transitions as the collector does, but no GymCollector said how: "
            "add a collector: section to the config, or set bootstrap_target_decay to null."
        )
    if rating.discount is None:
        raise ValueError(
            f"{option} needs collector.rating.discount (e.g. 0.97), which is null: an episode's "
            "undiscounted return cannot be bootstrapped step by step."
        )
    return rating


def with_bootstrapped_ratings(
    batch: Transitions, rating: SuccessRating, target: AveragedModel, num_actions: int
) -> Transitions:
    """The batch with its ratings replaced by bootstrapped ones (what both Q heads then learn)."""
    next_ratings = target_next_ratings(target, batch, num_actions)
    ratings = bootstrapped_ratings(rating, batch.reward, batch.terminated, next_ratings)
    return batch._replace(rate=ratings.to(batch.rate.dtype))
