"""The Act/Env networks, losses and the four optimizers' scopes."""

import copy
import math

import pytest
import torch

from duet.datamodules import ExperienceDataModule
from duet.lightning_modules import ActEnvAgent
from duet.lightning_modules.actenv_losses import act_loss, act_q_loss, env_loss, env_q_matching_loss
from duet.lightning_modules.actenv_options import ActEnvNetworks
from duet.lightning_modules.networks.actenv import ActEnvNet


def test_network_shapes_and_reference_sizes():
    act, env = ActEnvNet(4, 2, out_size=2), ActEnvNet(4, 2, out_size=4)
    states, conditions = torch.randn(7, 4), torch.tensor([0, 1, 1, 0, 0, 1, 0])
    logits, q = act(states, conditions)
    assert logits.shape == (7, 2) and q.shape == (7,)
    next_state_logits, env_q = env(states, conditions)
    assert next_state_logits.shape == (7, 4) and env_q.shape == (7,)
    assert act.encode.out_features == 2  # the reference squeezes the state into action_size units
    assert act.hidden.in_features == 2 + 2 and act.hidden.out_features == 8


def test_dense_layers_start_glorot_uniform_with_zero_bias():
    torch.manual_seed(0)
    net = ActEnvNet(4, 2, out_size=4, hidden_size=50)
    bound = math.sqrt(6 / (4 + 50))
    assert net.hidden.weight.abs().max() <= bound and net.hidden.weight.abs().max() > 0.9 * bound
    assert all(layer.bias.abs().sum() == 0 for layer in (net.encode, net.hidden, net.q_head))


@pytest.mark.parametrize("trainable_heads", [False, True])
def test_heads_are_frozen_unless_asked(trainable_heads):
    net = ActEnvNet(4, 2, out_size=2, trainable_heads=trainable_heads)
    for head in (net.out_head, net.q_head):
        assert all(p.requires_grad == trainable_heads for p in head.parameters())
    assert all(p.requires_grad for p in net.encode.parameters())


def test_reference_batchnorm_stays_in_inference_mode_and_is_an_affine_map():
    net = ActEnvNet(4, 2, out_size=2)
    net.train()
    assert not net.encode_norm.training and not net.hidden_norm.training
    x = torch.randn(16, 2)
    with torch.no_grad():
        net.encode_norm.weight.fill_(2.0)
        net.encode_norm.bias.fill_(0.5)
    expected = 2.0 * x / math.sqrt(1 + 1e-3) + 0.5  # initial running stats: mean 0, var 1
    torch.testing.assert_close(net.encode_norm(x), expected)
    net.encode_norm(x)
    assert torch.equal(net.encode_norm.running_mean, torch.zeros(2))  # never updated


def test_batchnorm_training_option_uses_batch_statistics():
    net = ActEnvNet(4, 2, out_size=2, batchnorm_training=True)
    net.train()
    assert net.encode_norm.training
    net.encode_norm(torch.randn(16, 2) + 3)
    assert net.encode_norm.running_mean.abs().sum() > 0
    net.eval()
    assert not net.encode_norm.training


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def bce(logit: float, target: float) -> float:
    return softplus(logit) - target * logit


def test_losses_match_hand_computation():
    d = torch.float64
    logits = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=d)
    actions = torch.tensor([1, 0])
    act_q = torch.tensor([0.5, -1.0], dtype=d)
    rates = torch.tensor([1.0, 0.2], dtype=d)
    cross_entropy = (math.log(math.e + math.e**2) - 2 + math.log(2)) / 2
    q_term = (bce(0.5, 1.0) + bce(-1.0, 0.2)) / 2
    assert abs(act_loss(logits, actions, act_q, rates).item() - (cross_entropy + q_term)) < 1e-7

    next_logits = torch.tensor([[0.3, -0.2]], dtype=d)
    next_states = torch.tensor([[1.0, -2.0]], dtype=d)
    env_q, rate = torch.tensor([0.25], dtype=d), torch.tensor([0.6], dtype=d)
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    model_term = (bce(0.3, sigmoid(1.0)) + bce(-0.2, sigmoid(-2.0))) / 2
    expected = model_term + bce(0.25, 0.6)
    assert abs(env_loss(next_logits, next_states, env_q, rate).item() - expected) < 1e-7

    env_q2 = torch.tensor([1.0, -1.0], dtype=d)
    assert abs(env_q_matching_loss(env_q2, act_q).item() - (0.25 + 0.0) / 2) < 1e-7
    assert abs(act_q_loss(act_q).item() - 0.25) < 1e-7


def make_batch(size: int = 64, seed: int = 0):
    from duet.datamodules.replay import Transitions

    g = torch.Generator().manual_seed(seed)
    return Transitions(
        prev_action=torch.randint(2, (size,), generator=g),
        state=torch.randn(size, 4, generator=g),
        action=torch.randint(2, (size,), generator=g),
        next_state=torch.randn(size, 4, generator=g),
        reward=torch.ones(size),
        terminated=torch.zeros(size, dtype=torch.bool),
        truncated=torch.zeros(size, dtype=torch.bool),
        rate=torch.rand(size, generator=g),
    )


class OneBatch(ExperienceDataModule):
    """Serves the same fixed batch; no environment needed."""

    def __init__(self, batch) -> None:
        super().__init__(capacity=len(batch.action), batch_size=len(batch.action))
        self.batch = batch

    def train_dataloader(self):
        return torch.utils.data.DataLoader([self.batch] * 100, batch_size=None)


def snapshot(agent):
    return {
        name: [p.detach().clone() for p in getattr(agent, name).parameters()]
        for name in ("act", "env")
    }


@pytest.mark.parametrize("trainable_heads", [False, True])
def test_each_optimizer_moves_only_its_own_networks_trainable_parameters(trainable_heads, tmp_path):
    from tests.conftest import tiny_trainer

    network = ActEnvNetworks(trainable_heads=trainable_heads)
    agent = ActEnvAgent(state_size=4, action_size=2, network=network)
    snapshots, grads = [snapshot(agent)], {}

    def on_start(trainer):
        for index, optimizer in enumerate(trainer.optimizers):
            optimizer.register_step_pre_hook(
                lambda opt, args, kwargs, i=index: grads.__setitem__(
                    i, [_clone(p.grad) for group in opt.param_groups for p in group["params"]]
                )
            )
            optimizer.register_step_post_hook(lambda *args: snapshots.append(snapshot(agent)))

    import lightning as L

    class Hook(L.Callback):
        def on_train_start(self, trainer, module):
            on_start(trainer)

    trainer = tiny_trainer(tmp_path, max_steps=1, callbacks=[Hook()])
    batch = make_batch()
    trainer.fit(agent, datamodule=OneBatch(batch))
    assert trainer.global_step == 1

    def moved(before, after, name):
        return [not torch.equal(a, b) for a, b in zip(before[name], after[name], strict=True)]

    def only_trainable(flags, name):
        trainable = [p.requires_grad for p in getattr(agent, name).parameters()]
        return any(flags) and all(t for f, t in zip(flags, trainable, strict=True) if f)

    start, after_a, after_e, after_a2, after_e2 = snapshots
    trainable_act = [p.requires_grad for p in agent.act.parameters()]
    trainable_env = [p.requires_grad for p in agent.env.parameters()]
    # Stage 1: a_loss and e_loss reach every trainable parameter of their network.
    assert moved(start, after_a, "act") == trainable_act and not any(moved(start, after_a, "env"))
    assert moved(after_a, after_e, "env") == trainable_env and not any(
        moved(after_a, after_e, "act")
    )
    # Stage 2: a subset (the Q path) of each network's trainable parameters, nothing else.
    assert only_trainable(moved(after_e, after_a2, "act"), "act")
    assert not any(moved(after_e, after_a2, "env"))
    assert only_trainable(moved(after_a2, after_e2, "env"), "env")
    assert not any(moved(after_a2, after_e2, "act"))

    # Stage 2: both gradients come from the weights after stage 1, before either stage-2 step.
    stage_one = copy.deepcopy(agent)
    for network in ("act", "env"):
        for param, value in zip(
            getattr(stage_one, network).parameters(), after_e[network], strict=True
        ):
            param.data.copy_(value)
    _, act_q = stage_one.act(batch.state, batch.prev_action)
    _, env_q = stage_one.env(batch.state, batch.action)
    act_params = [p for p in stage_one.act.parameters() if p.requires_grad]
    env_params = [p for p in stage_one.env.parameters() if p.requires_grad]
    act_grads = torch.autograd.grad(act_q_loss(act_q), act_params, allow_unused=True)
    env_loss2 = env_q_matching_loss(env_q, act_q.detach())
    env_grads = torch.autograd.grad(env_loss2, env_params, allow_unused=True)
    for recorded, expected in ((grads[2], act_grads), (grads[3], env_grads)):
        for a, b in zip(recorded, expected, strict=True):
            # A head that a stage-2 loss does not use gets no gradient, so Adam leaves it alone.
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b)


def _clone(grad):
    return None if grad is None else grad.clone()


def test_optimizers_are_four_separate_adams_with_the_reference_rate():
    agent = ActEnvAgent(state_size=4, action_size=2)
    optimizers = agent.configure_optimizers()
    assert len({id(o) for o in optimizers}) == 4
    for optimizer in optimizers:
        assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == 1e-4
        assert optimizer.defaults["fused"]
    act_ids = {id(p) for p in agent.act.parameters() if p.requires_grad}
    env_ids = {id(p) for p in agent.env.parameters() if p.requires_grad}
    scopes = [{id(p) for g in o.param_groups for p in g["params"]} for o in optimizers]
    assert scopes == [act_ids, env_ids, act_ids, env_ids]


def test_agent_without_sizes_explains_how_to_get_them():
    with pytest.raises(RuntimeError, match="GymCollector"):
        ActEnvAgent().configure_optimizers()


def test_build_refuses_other_sizes():
    agent = ActEnvAgent(state_size=4, action_size=2)
    with pytest.raises(ValueError, match="environment has 6 and 3"):
        agent.build(6, 3)


@pytest.mark.parametrize("batchnorm_training", [False, True])
def test_greedy_actions_are_the_argmax_of_act_logits(batchnorm_training):
    torch.manual_seed(0)
    network = ActEnvNetworks(batchnorm_training=batchnorm_training)
    agent = ActEnvAgent(state_size=4, action_size=2, network=network)
    with torch.no_grad():  # running statistics other than the initial ones
        agent.act.encode_norm.running_mean.uniform_(-2, 2)
    states, prev = torch.randn(9, 4), torch.randint(2, (9,))
    logits, _ = agent.act.eval()(states, prev)  # BatchNorm on its running statistics
    agent.act.train()
    before = agent.act.encode_norm.running_mean.clone()
    for rows in (slice(0, 1), slice(None)):
        greedy = agent.greedy_actions(states[rows], prev[rows])
        assert torch.equal(greedy, logits[rows].argmax(1))
    assert agent.act.training and agent.act.encode_norm.training == batchnorm_training
    assert torch.equal(agent.act.encode_norm.running_mean, before)
