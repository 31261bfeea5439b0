"""The reference's four Act/Env losses as pure functions.

Shapes: ``action_logits`` (B, A), ``actions`` (B,) int64, ``next_state_logits`` and
``next_states`` (B, S), every ``*_q`` logit and ``rates`` (B,). Each loss is a batch mean,
as ``tf.reduce_mean`` over the TensorFlow ops the reference used.
"""

import torch.nn.functional as F
from torch import Tensor


def act_loss(
    action_logits: Tensor,
    actions: Tensor,
    act_q: Tensor,
    rates: Tensor,
    imitation_weight: float = 1.0,
) -> Tensor:
    """Softmax cross-entropy of the taken action (times ``imitation_weight``, reference 1) + sigmoid
    cross-entropy of Q against the rate."""
    imitation = imitation_weight * F.cross_entropy(action_logits, actions)
    return imitation + F.binary_cross_entropy_with_logits(act_q, rates)


def env_loss(
    next_state_logits: Tensor, next_states: Tensor, env_q: Tensor, rates: Tensor
) -> Tensor:
    """Sigmoid cross-entropy against sigmoid(next state) + sigmoid cross-entropy of Q vs rate."""
    model = F.binary_cross_entropy_with_logits(next_state_logits, next_states.sigmoid())
    return model + F.binary_cross_entropy_with_logits(env_q, rates)


def env_q_matching_loss(env_q: Tensor, act_q: Tensor) -> Tensor:
    """mean((Env Q − Act Q)²): e_loss2, minimised over Env's parameters."""
    return (env_q - act_q).square().mean()


def act_q_loss(act_q: Tensor) -> Tensor:
    """−mean(Act Q): a_loss2, minimised over Act's parameters."""
    return -act_q.mean()


def follow_env_q_loss(
    action_logits: Tensor, env_q_per_action: Tensor, margin: float = 0.0
) -> Tensor:
    """Cross-entropy of Act's action logits (B, A) against argmax over actions of Env's Q (B, A).

    The variant's a_loss2: the actor learns to pick the action the environment model rates most
    likely to succeed, instead of raising its own Q estimate. With ``margin`` > 0 a state counts
    only where Env's success probabilities (sigmoid of Q) of its best and second-best action differ
    by at least ``margin``; the sum is still divided by B, so a batch that tells little moves the
    actor little.
    """
    targets = env_q_per_action.detach().argmax(dim=1)
    if margin == 0.0:
        return F.cross_entropy(action_logits, targets)
    best, second = env_q_per_action.detach().sigmoid().topk(2, dim=1).values.unbind(dim=1)
    informative = (best - second) >= margin
    per_state = F.cross_entropy(action_logits, targets, reduction="none")
    return (per_state * informative).sum() / len(per_state)
