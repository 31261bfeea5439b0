"""The options that make the Act/Env agent learn: shapes, losses, optimizer scopes."""

import math
from dataclasses import replace

import lightning as L
import pytest
import torch

from duet.lightning_modules import ActEnvAgent
from duet.lightning_modules.actenv_losses import act_loss, follow_env_q_loss
from duet.lightning_modules.actenv_options import ActEnvLosses, ActEnvNetworks
from tests.conftest import tiny_trainer
from tests.test_actenv_agent import OneBatch, _clone, make_batch, snapshot

SOLVED = dict(
    network=ActEnvNetworks(hidden_size=64, encode_width=64, trainable_heads=True),
    losses=ActEnvLosses(imitation_weight=0.0, follow_env_q=True, q_matching_weight=0.0),
)


def test_encode_width_and_hidden_size_shape_both_networks():
    network = ActEnvNetworks(hidden_size=64, encode_width=64)
    agent = ActEnvAgent(state_size=4, action_size=2, network=network)
    assert agent.act.encode.out_features == agent.env.encode.out_features == 64
    assert agent.act.hidden.in_features == 64 + 2  # the one-hot condition is concatenated
    # encode 4·64+64, BatchNorm 2·64, hidden 66·64+64, BatchNorm 2·64, Q head 64+1, out head:
    shared = 320 + 128 + 4_288 + 128 + 65
    assert sum(p.numel() for p in agent.act.parameters()) == shared + 64 * 2 + 2
    assert sum(p.numel() for p in agent.env.parameters()) == shared + 64 * 4 + 4


def test_reference_defaults_are_unchanged():
    hparams = ActEnvAgent(state_size=4, action_size=2).hparams
    assert hparams["network"]["encode_width"] is None
    assert hparams["losses"]["imitation_weight"] == 1.0
    assert hparams["losses"]["follow_env_q"] is False
    assert hparams["losses"]["q_matching_weight"] == 1.0


def test_imitation_weight_scales_only_the_imitation_term():
    d = torch.float64
    logits, actions = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=d), torch.tensor([1, 0])
    act_q, rates = torch.tensor([0.5, -1.0], dtype=d), torch.tensor([1.0, 0.2], dtype=d)
    q_term = act_loss(logits, actions, act_q, rates, imitation_weight=0.0)
    full = act_loss(logits, actions, act_q, rates)
    imitation = (math.log(math.e + math.e**2) - 2 + math.log(2)) / 2
    assert full.item() - q_term.item() == pytest.approx(imitation, abs=1e-12)
    half = act_loss(logits, actions, act_q, rates, imitation_weight=0.5)
    assert half.item() == pytest.approx(q_term.item() + 0.5 * imitation, abs=1e-12)


def test_follow_env_q_loss_is_cross_entropy_to_the_best_rated_action():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    env_q = torch.tensor([[-1.0, 3.0], [0.5, 0.2]], dtype=torch.float64, requires_grad=True)
    # Targets: action 1 for the first state, action 0 for the second.
    expected = (math.log(1 + math.e**2) - 0.0 + math.log(1 + math.e) - 0.0) / 2
    loss = follow_env_q_loss(logits, env_q)
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    assert not loss.requires_grad  # Env's Q is a target: no gradient flows back into Env


def test_follow_margin_drops_the_states_where_env_rates_the_best_two_actions_alike():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    # Success probabilities: 0.953 vs 0.269 (gap 0.68), then 0.622 vs 0.550 (gap 0.073).
    env_q = torch.tensor([[-1.0, 3.0], [0.5, 0.2]], dtype=torch.float64)
    first_state = math.log(1 + math.e**2)  # CE against action 1
    both = follow_env_q_loss(logits, env_q)
    assert follow_env_q_loss(logits, env_q, margin=0.07).item() == pytest.approx(both.item())
    only_first = follow_env_q_loss(logits, env_q, margin=0.08)
    assert only_first.item() == pytest.approx(first_state / 2, abs=1e-12)  # still divided by B
    # Three actions: the gap is between the best two (0.881 vs 0.870), not best and worst.
    three = torch.tensor([[2.0, 1.9, -5.0]], dtype=torch.float64)
    assert follow_env_q_loss(torch.zeros(1, 3, dtype=torch.float64), three, 0.02).item() == 0.0


def test_follow_margin_reaches_the_training_step_and_needs_follow_env_q(tmp_path):
    class LastOutputs(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.outputs = outputs

    a_loss2 = {}
    for margin in (0.0, 1.0):  # no two success probabilities differ by 1
        torch.manual_seed(0)
        losses = replace(SOLVED["losses"], follow_margin=margin)
        agent = ActEnvAgent(state_size=4, action_size=2, network=SOLVED["network"], losses=losses)
        recorder = LastOutputs()
        tiny_trainer(tmp_path, max_steps=1, callbacks=[recorder]).fit(
            agent, datamodule=OneBatch(make_batch())
        )
        a_loss2[margin] = recorder.outputs["train/a_loss2"].item()
    assert a_loss2[1.0] == 0.0 and a_loss2[0.0] > 0.1
    message = r"ActEnvAgent: losses\.follow_margin=0\.1 needs losses\.follow_env_q=true"
    with pytest.raises(ValueError, match=message):
        ActEnvAgent(state_size=4, action_size=2, losses=ActEnvLosses(follow_margin=0.1))


def test_env_q_per_action_is_env_q_of_each_action():
    torch.manual_seed(0)
    agent = ActEnvAgent(state_size=4, action_size=3, **SOLVED)
    states = torch.randn(5, 4)
    q = agent.env_q_per_action(states)
    assert q.shape == (5, 3)
    for action in range(3):
        _, expected = agent.env(states, torch.full((5,), action))
        torch.testing.assert_close(q[:, action], expected)


def test_solved_variant_optimizer_scopes(tmp_path):
    """a_opt2 follows Env's per-action Q and moves only Act; with q_matching_weight 0, e_opt2
    gets a zero gradient and leaves Env where e_opt put it."""
    torch.manual_seed(0)
    agent = ActEnvAgent(state_size=4, action_size=2, **SOLVED)
    snapshots, grads = [snapshot(agent)], {}

    class Hooks(L.Callback):
        def on_train_start(self, trainer, module):
            for index, optimizer in enumerate(trainer.optimizers):
                optimizer.register_step_pre_hook(
                    lambda opt, *_, i=index: grads.__setitem__(
                        i, [_clone(p.grad) for g in opt.param_groups for p in g["params"]]
                    )
                )
                optimizer.register_step_post_hook(lambda *_: snapshots.append(snapshot(agent)))

    batch = make_batch()
    trainer = tiny_trainer(tmp_path, max_steps=1, callbacks=[Hooks()])
    trainer.fit(agent, datamodule=OneBatch(batch))
    start, after_a, after_e, after_a2, after_e2 = snapshots

    def same(before, after, name):
        return all(torch.equal(a, b) for a, b in zip(before[name], after[name], strict=True))

    assert not same(start, after_a, "act") and same(start, after_a, "env")
    assert not same(after_a, after_e, "env") and same(after_a, after_e, "act")
    assert not same(after_e, after_a2, "act") and same(after_e, after_a2, "env")
    assert same(after_a2, after_e2, "env") and same(after_a2, after_e2, "act")
    assert all(g is None or not g.any() for g in grads[3])

    # a_opt2's gradient: CE of Act's logits against argmax of Env's Q, from stage-1 weights.
    for network in ("act", "env"):
        for param, value in zip(
            getattr(agent, network).parameters(), after_e[network], strict=True
        ):
            param.data.copy_(value)
    logits, _ = agent.act(batch.state, batch.prev_action)
    loss = follow_env_q_loss(logits, agent.env_q_per_action(batch.state))
    expected = torch.autograd.grad(loss, list(agent.act.parameters()), allow_unused=True)
    for recorded, wanted in zip(grads[2], expected, strict=True):
        assert (recorded is None) == (wanted is None)
        if wanted is not None:
            torch.testing.assert_close(recorded, wanted)


def test_act_ema_averages_act_after_every_iteration_and_is_the_acting_network(tmp_path):
    torch.manual_seed(0)
    agent = ActEnvAgent(state_size=4, action_size=2, act_ema_decay=0.5, **SOLVED)
    expected = [p.detach().clone() for p in agent.act.parameters()]  # a copy of Act at first

    class Follow(L.Callback):
        def on_train_batch_end(self, trainer, module, *rest):
            for average, p in zip(expected, module.act.parameters(), strict=True):
                average.mul_(0.5).add_(p.detach(), alpha=0.5)

    trainer = tiny_trainer(tmp_path, max_steps=3, callbacks=[Follow()])
    trainer.fit(agent, datamodule=OneBatch(make_batch()))
    ema = agent.act_ema
    assert int(ema.n_averaged) == 4  # the copy at build and three iterations
    for average, p in zip(expected, ema.module.parameters(), strict=True):
        torch.testing.assert_close(p, average)
    assert all(not p.requires_grad for p in ema.parameters())
    assert agent.acting_network is ema.module
    states, prev = torch.randn(16, 4), torch.randint(2, (16,))
    logits, _ = ema.module(states, prev)
    assert torch.equal(agent.greedy_actions(states, prev), logits.argmax(1))
    assert not torch.equal(logits, agent.act(states, prev)[0])  # Act itself has moved on


def test_without_act_ema_the_agent_acts_with_act():
    agent = ActEnvAgent(state_size=4, action_size=2)
    assert agent.act_ema is None and agent.acting_network is agent.act
    assert not any(key.startswith("act_ema") for key in agent.state_dict())
