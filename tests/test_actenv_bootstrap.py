"""ActEnvAgent(bootstrap_target_decay=...): success ratings learnt from each transition's reward
and a target Env's rating of its next state, on the collector's rating scale."""

import lightning as L
import numpy as np
import pytest
import torch

from duet.callbacks import GymCollector
from duet.datamodules import ExperienceDataModule
from duet.datamodules.rating import SuccessRating, bootstrapped_ratings, transition_values
from duet.lightning_modules import ActEnvAgent
from duet.lightning_modules.actenv_bootstrap import target_next_ratings, with_bootstrapped_ratings
from tests.conftest import tiny_trainer
from tests.test_actenv_agent import OneBatch, make_batch
from tests.test_actenv_variant import SOLVED
from tests.test_gym_collector import NO_STOP

# configs/actenv_acrobot.yaml
ACROBOT = SuccessRating(discount=0.97, return_offset=-1.0, return_scale=1.0)
CARTPOLE = SuccessRating(discount=0.995, return_scale=1.0)  # configs/actenv_cartpole_solved.yaml
EITHER_SIGN = SuccessRating(discount=0.9, return_offset=-2.0, return_scale=5.0)


@pytest.mark.parametrize(
    "rule, rewards, terminated",
    [
        (ACROBOT, [-1.0] * 6, True),  # reached the goal
        (ACROBOT, [-1.0] * 6, False),  # cut off by the time limit
        (CARTPOLE, [1.0] * 5, True),  # CartPole's pole fell
        (EITHER_SIGN, [0.5, -1.0, 3.0, 2.0], True),  # rewards of either sign
        (EITHER_SIGN, [0.5, -1.0, 3.0, 2.0], False),
    ],
)
def test_bootstrapping_from_the_true_next_ratings_gives_the_episodes_own_ratings(
    rule, rewards, terminated
):
    # Fed the ratings the collector gave the following transitions, one step of bootstrapping
    # reproduces every rating; after a cut-off the next state is rated as the collector assumes
    # (its last reward forever).
    length = len(rewards)
    values = transition_values(
        np.array([rewards]), np.array([length]), np.array([not terminated]), rule.discount
    )[0]
    ratings = (values - rule.return_offset) / rule.return_scale
    after_cut_off = (rewards[-1] - rule.return_offset) / rule.return_scale
    next_ratings = np.append(ratings[1:], after_cut_off)
    got = bootstrapped_ratings(
        rule,
        torch.tensor(rewards, dtype=torch.float64),
        torch.tensor([False] * (length - 1) + [terminated]),
        torch.tensor(next_ratings),
    )
    np.testing.assert_allclose(got.numpy(), ratings, rtol=0, atol=1e-12)
    # The ratings differ along the episode, but for Acrobot's cut-off: never reached, all 0.
    assert len(set(np.round(ratings, 9))) > 1 or (rule is ACROBOT and ratings.max() == 0)


def test_a_batch_is_rated_by_the_targets_best_action_in_each_next_state():
    torch.manual_seed(0)
    agent = ActEnvAgent(state_size=4, action_size=2, bootstrap_target_decay=0.99, **SOLVED)
    batch = make_batch(8)._replace(reward=-torch.ones(8), terminated=torch.arange(8) % 3 == 0)
    rated = with_bootstrapped_ratings(batch, ACROBOT, agent.env_target, num_actions=2)

    _, q_left = agent.env(batch.next_state, torch.zeros(8, dtype=torch.int64))
    _, q_right = agent.env(batch.next_state, torch.ones(8, dtype=torch.int64))
    best = torch.maximum(q_left, q_right).sigmoid()  # the target is still a copy of Env
    wanted = torch.where(batch.terminated, 0.97 * 1.0, 0.97 * best)  # −1 a step: γ·next rating
    torch.testing.assert_close(rated.rate, wanted.detach())
    for name in ("state", "action", "next_state", "reward", "terminated"):
        assert torch.equal(getattr(rated, name), getattr(batch, name))
    torch.testing.assert_close(target_next_ratings(agent.env_target, batch, 2), best.detach())


def test_the_target_env_follows_env_as_a_moving_average_each_iteration(tmp_path):
    torch.manual_seed(0)
    agent = ActEnvAgent(state_size=4, action_size=2, bootstrap_target_decay=0.9, **SOLVED)
    agent.use_success_rating(ACROBOT)
    weights = lambda network: [p.detach().clone() for p in network.parameters()]  # noqa: E731
    envs, targets = [weights(agent.env)], [weights(agent.env_target.module)]

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, module, *rest):
            envs.append(weights(module.env))
            targets.append(weights(module.env_target.module))

    tiny_trainer(tmp_path, max_steps=3, callbacks=[Record()]).fit(
        agent, datamodule=OneBatch(make_batch(32))
    )
    assert len(targets) == 4
    for p, q in zip(targets[0], envs[0], strict=True):
        assert torch.equal(p, q)  # a copy of Env before training
    for k in range(1, 4):
        for before, env, after in zip(targets[k - 1], envs[k], targets[k], strict=True):
            torch.testing.assert_close(after, 0.9 * before + 0.1 * env)
    assert not all(torch.equal(p, q) for p, q in zip(targets[3], envs[3], strict=True))


def test_a_bootstrapping_agent_refuses_a_collector_without_discount(tmp_path):
    agent = ActEnvAgent(bootstrap_target_decay=0.99, **SOLVED)
    collector = GymCollector(prefill_steps=50, stopping=NO_STOP)
    trainer = tiny_trainer(tmp_path, max_steps=2, callbacks=[collector])
    data = ExperienceDataModule(capacity=100, batch_size=8)
    message = r"bootstrap_target_decay=0.99 needs collector\.rating\.discount .*null"
    with pytest.raises(ValueError, match=message):
        trainer.fit(agent, datamodule=data)


def test_a_bootstrapping_agent_without_a_collector_says_what_is_missing(tmp_path):
    agent = ActEnvAgent(state_size=4, action_size=2, bootstrap_target_decay=0.99)
    trainer = tiny_trainer(tmp_path, max_steps=2)
    message = r"bootstrap_target_decay=0.99 .*add a collector: section to the config"
    with pytest.raises(RuntimeError, match=message):
        trainer.fit(agent, datamodule=OneBatch(make_batch(32)))


@pytest.mark.slow  # compiles a graph of its own
def test_a_compiled_bootstrapping_agent_updates_as_the_eager_one(tmp_path):
    # The ratings are bootstrapped before the graph runs, so it learns them as the eager one does.
    def train(compile: bool) -> ActEnvAgent:
        torch.manual_seed(0)
        options = dict(SOLVED, bootstrap_target_decay=0.9, compile=compile)
        agent = ActEnvAgent(state_size=4, action_size=2, **options)
        agent.use_success_rating(ACROBOT)
        batch = make_batch(32)._replace(reward=-torch.ones(32))
        tiny_trainer(tmp_path / str(compile), max_steps=4).fit(agent, datamodule=OneBatch(batch))
        return agent

    eager, compiled = train(False), train(True)
    for (key, got), wanted in zip(
        compiled.state_dict().items(), eager.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(got, wanted, rtol=1e-5, atol=1e-6, msg=key)
    assert any(key.startswith("env_target.") for key in compiled.state_dict())
