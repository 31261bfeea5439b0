"""The whole Act/Env training iteration as one compiled graph.

``ActEnvAgent(compile=True)`` runs its iterations through ``CompiledIteration``. The networks are
so small that an eager iteration's time goes to per-operation dispatch, to the autograd engine
walking its graph and to the optimizers' Python, not to arithmetic (BENCHMARKS.md).
``torch.func.grad`` writes each stage's backward pass out as ordinary tensor operations, and
torch.optim's functional ``adam`` does the same for each optimizer's update, on that optimizer's
own state tensors; ``torch.compile`` then turns both stages — forward passes, losses, backward
passes and the four updates — into one graph.

The optimizers stay the four torch optimizers Lightning made, saves and restores: the graph reads
their hyperparameters (learning rates a scheduler changed included) and updates their state in
place, so a checkpoint resumes with ``compile`` on or off.
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad
from torch.optim import Adam, Optimizer
from torch.optim.adam import adam

from duet.datamodules.replay import Transitions
from duet.lightning_modules.actenv_stages import STAGES

Tensors = dict[str, Tensor]
Average = Callable[[list[Tensor]], list[Tensor]]


class AdamGroup(NamedTuple):
    """One parameter group of an Adam optimizer: the parameters it holds state for, by their
    names in their network, that state, and the group's hyperparameters."""

    names: list[str]
    params: list[Tensor]
    exp_avgs: list[Tensor]
    exp_avg_sqs: list[Tensor]
    max_exp_avg_sqs: list[Tensor]
    steps: list[Tensor]
    settings: dict


def adam_groups(optimizer: Optimizer, names: dict[int, str]) -> list[AdamGroup]:
    """The groups of an Adam optimizer (``check_optimizers`` refuses others), each with the
    parameters that have state (``names``: id -> name)."""
    groups = []
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if p in optimizer.state]
        states = [optimizer.state[p] for p in params]
        settings = {key: group[key] for key in ("lr", "eps", "weight_decay", "amsgrad", "maximize")}
        settings.update(
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            decoupled_weight_decay=group.get("decoupled_weight_decay", False),
        )
        groups.append(
            AdamGroup(
                names=[names[id(p)] for p in params],
                params=params,
                exp_avgs=[state["exp_avg"] for state in states],
                exp_avg_sqs=[state["exp_avg_sq"] for state in states],
                max_exp_avg_sqs=[state["max_exp_avg_sq"] for state in states if group["amsgrad"]],
                steps=[state["step"] for state in states],
                settings=settings,
            )
        )
    return groups


def named_params(groups: list[AdamGroup]) -> Tensors:
    return {n: p for group in groups for n, p in zip(group.names, group.params, strict=True)}


def clipped(grads: list[Tensor], max_norm: float | None) -> list[Tensor]:
    """The gradients scaled to a total 2-norm of at most ``max_norm``, with the arithmetic of
    ``torch.nn.utils.clip_grad_norm_`` (what Lightning's ``clip_gradients`` calls)."""
    if max_norm is None or not grads:
        return grads
    total = torch.nn.utils.get_total_norm(grads)
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * scale for g in grads]


class CompiledIteration:
    """Both stages, with the four optimizers ``(a_opt, e_opt, a_opt2, e_opt2)``, in one graph.

    Each optimizer updates exactly the parameters it holds state for. Adam creates that state at
    a parameter's first gradient, so the agent runs its first iteration eagerly (``ready`` is
    false until every optimizer has state): parameters a stage's losses never reach get no state
    and stay where they are, as in eager mode, where their ``.grad`` is None. A resumed run has
    the state from its checkpoint and compiles from its first iteration.

    Args:
        act, env: the two networks.
        clip_norms: the gradient norm limit of each optimizer, or None.
        average: the gradients' mean over processes (run eagerly, between the graph's pieces), or
            None on one process.
    """

    def __init__(
        self,
        act: nn.Module,
        env: nn.Module,
        clip_norms: Sequence[float | None],
        average: Average | None = None,
    ) -> None:
        self.networks = (act, env)
        self.names = [{id(p): name for name, p in net.named_parameters()} for net in self.networks]
        self.clip_norms = tuple(clip_norms)
        self.average = None if average is None else torch.compiler.disable(average)
        self.graph = torch.compile(self.iteration)

    @staticmethod
    def check_optimizers(optimizers: Sequence[Optimizer]) -> None:
        """Refuse an optimizer whose update the graph does not compute."""
        for optimizer in optimizers:
            if not isinstance(optimizer, Adam) or optimizer.defaults["differentiable"]:
                raise ValueError(
                    f"ActEnvAgent: compile=true computes Adam's update inside its graph, but "
                    f"model.optimizer makes {type(optimizer).__name__}"
                    f"{' (differentiable)' if isinstance(optimizer, Adam) else ''}. Use "
                    "torch.optim.Adam or AdamW, or compile=false."
                )

    @staticmethod
    def ready(optimizers: Sequence[Optimizer]) -> bool:
        return all(optimizer.state for optimizer in optimizers)

    def __call__(
        self, optimizers: Sequence[Optimizer], batch: Transitions, stage_options: Sequence[tuple]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Run one iteration with the four Adam optimizers (``check_optimizers``), updating the
        weights and the optimizers' state; the four losses."""
        network_of = (0, 1, 0, 1)  # a_opt and a_opt2 update Act, e_opt and e_opt2 Env
        groups = [
            adam_groups(optimizer, self.names[network_of[index]])
            for index, optimizer in enumerate(optimizers)
        ]
        buffers = [dict(net.named_buffers()) for net in self.networks]
        return self.graph(groups, buffers, batch, tuple(stage_options))

    def iteration(
        self,
        groups: list[list[AdamGroup]],
        buffers: list[Tensors],
        batch: Transitions,
        stage_options: tuple[tuple, ...],
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        act_buffers, env_buffers = buffers
        losses: tuple[Tensor, ...] = ()
        for first, stage, options in zip((0, 2), STAGES, stage_options, strict=True):
            act_groups, env_groups = groups[first], groups[first + 1]
            act_params, env_params = named_params(act_groups), named_params(env_groups)
            (act_grads, env_grads), stage_losses = grad(
                self.loss_sum, argnums=(0, 1), has_aux=True
            )(act_params, env_params, act_buffers, env_buffers, batch, stage, options)
            act_ordered = [act_grads[name] for group in act_groups for name in group.names]
            env_ordered = [env_grads[name] for group in env_groups for name in group.names]
            if self.average is not None:  # both networks in one all-reduce, as in eager mode
                averaged = self.average(act_ordered + env_ordered)
                act_ordered, env_ordered = (
                    averaged[: len(act_ordered)],
                    averaged[len(act_ordered) :],
                )
            with torch.no_grad():
                self.update(act_groups, act_ordered, self.clip_norms[first])
                self.update(env_groups, env_ordered, self.clip_norms[first + 1])
            losses += stage_losses
        a_loss, e_loss, a_loss2, e_loss2 = losses
        return a_loss, e_loss, a_loss2, e_loss2

    def update(self, groups: list[AdamGroup], grads: list[Tensor], max_norm: float | None) -> None:
        """One optimizer's step on its groups' gradients, in their order: clip, then Adam on each
        group, in place."""
        ordered = clipped(grads, max_norm)
        start = 0
        for group in groups:
            group_grads = ordered[start : start + len(group.params)]
            start += len(group.params)
            adam(
                group.params,
                group_grads,
                group.exp_avgs,
                group.exp_avg_sqs,
                group.max_exp_avg_sqs,
                group.steps,
                foreach=False,
                **group.settings,
            )

    def loss_sum(
        self,
        act_params: Tensors,
        env_params: Tensors,
        act_buffers: Tensors,
        env_buffers: Tensors,
        batch: Transitions,
        stage: Callable[..., tuple[Tensor, Tensor]],
        options: tuple,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The stage run with the given tensors in place of the networks' own (the rest stay).
        Buffers come in as arguments, so BatchNorm may update its running statistics in place
        (``torch.func.grad`` refuses to mutate a tensor the function did not receive)."""
        act, env = self.networks
        act_tensors, env_tensors = {**act_params, **act_buffers}, {**env_params, **env_buffers}
        losses = stage(
            lambda *inputs: functional_call(act, act_tensors, inputs),
            lambda *inputs: functional_call(env, env_tensors, inputs),
            batch,
            *options,
        )
        return losses[0] + losses[1], (losses[0].detach(), losses[1].detach())
