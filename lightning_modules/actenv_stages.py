"""The two stages of an Act/Env training iteration as functions of the networks and a batch:
what ``ActEnvAgent`` differentiates, eagerly or in its compiled iteration."""

from collections.abc import Callable

import torch
from torch import Tensor

from duet.datamodules.replay import Transitions
from duet.lightning_modules.actenv_losses import (
    act_loss,
    act_q_loss,
    env_loss,
    env_q_matching_loss,
    follow_env_q_loss,
)

# An ActEnvNet, or a function that runs one with other parameters (actenv_compiled):
# (B, S) inputs and (B,) conditions -> ((B, out) logits, (B,) Q logit).
Network = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def env_q_per_action(env: Network, states: Tensor, num_actions: int) -> Tensor:
    """(B, S) states -> (B, A) Env's Q logit for every action, in one forward pass."""
    batch_size = len(states)
    actions = torch.arange(num_actions, device=states.device).repeat_interleave(batch_size)
    _, q = env(states.repeat(num_actions, 1), actions)  # (A·B,), action-major
    return q.view(num_actions, batch_size).T


def first_stage_losses(
    act: Network, env: Network, batch: Transitions, imitation_weight: float
) -> tuple[Tensor, Tensor]:
    """a_loss (depends on Act alone) and e_loss (on Env alone) from one forward pass of each."""
    action_logits, act_q = act(batch.state, batch.prev_action)
    next_state_logits, env_q = env(batch.state, batch.action)
    a_loss = act_loss(action_logits, batch.action, act_q, batch.rate, imitation_weight)
    e_loss = env_loss(next_state_logits, batch.next_state, env_q, batch.rate)
    return a_loss, e_loss


def second_stage_losses(
    act: Network,
    env: Network,
    batch: Transitions,
    follow_env_q: bool,
    q_matching_weight: float,
    follow_margin: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """a_loss2 and e_loss2 from a fresh forward pass; Act's Q is a constant in e_loss2."""
    action_logits, act_q = act(batch.state, batch.prev_action)
    _, env_q = env(batch.state, batch.action)
    if follow_env_q:
        with torch.no_grad():
            targets = env_q_per_action(env, batch.state, action_logits.shape[1])
        a_loss2 = follow_env_q_loss(action_logits, targets, follow_margin)
    else:
        a_loss2 = act_q_loss(act_q)
    return a_loss2, q_matching_weight * env_q_matching_loss(env_q, act_q.detach())


# Each stage: (Act, Env, batch, *its options) -> (Act's loss, Env's loss).
Stage = Callable[..., tuple[Tensor, Tensor]]
STAGES: tuple[Stage, Stage] = (first_stage_losses, second_stage_losses)
