"""ActEnvAgent(compile=True): the whole iteration in one compiled graph, giving the eager
updates: the same weights, buffers and optimizer states, the same parameters left alone."""

from dataclasses import replace

import lightning as L
import pytest
import torch
from torch._dynamo.utils import counters

from duet.lightning_modules import ActEnvAgent
from duet.lightning_modules.actenv import trainable
from duet.lightning_modules.actenv_options import AgentOptimization
from tests.conftest import tiny_trainer
from tests.test_actenv_agent import OneBatch, make_batch
from tests.test_actenv_variant import SOLVED


def adamw(params):
    # Weight decay moves a parameter whose gradient is zero: it tells a zero from a missing one.
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1, amsgrad=True)


def step_lr(optimizer):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)


def adam_without_scaling(params):
    # With BatchNorm on batch statistics, the biases before it get gradients that are float
    # rounding noise; Adam's default eps scales those up to full steps of either sign. An eps far
    # above them keeps the update in proportion, so eager and compiled runs stay comparable.
    return torch.optim.Adam(params, lr=1e-3, eps=1.0)


OPTIONS = {
    "reference": {},
    # The solved variant's losses (some heads unreached in the second stage), with clipping, a
    # rate that changes every iteration and AdamW with amsgrad's extra state.
    "clip_schedule_adamw": dict(
        SOLVED,
        optimization=AgentOptimization(act_clip_norm=0.01, env_clip_norm=0.02, scheduler=step_lr),
        optimizer=adamw,
    ),
    # BatchNorm on batch statistics: running statistics updated inside the graph.
    "batchnorm_training": dict(
        SOLVED,
        network=replace(SOLVED["network"], batchnorm_training=True),
        optimizer=adam_without_scaling,
    ),
}


def train(options: dict, compile: bool, root, steps: int = 4, precision: str = "32-true"):
    torch.manual_seed(0)
    agent = ActEnvAgent(state_size=4, action_size=2, compile=compile, **options)
    trainer = tiny_trainer(root, max_steps=steps, precision=precision)
    counters.clear()
    # Batches of 32, as in tests/test_resume.py: the same shapes, so one compilation serves both.
    trainer.fit(agent, datamodule=OneBatch(make_batch(32)))
    graphs = counters["stats"]["unique_graphs"]
    breaks = sum(counters["graph_break"].values())
    return agent, trainer, graphs, breaks


def assert_same_optimizer_states(ours, theirs, **tolerance) -> None:
    for mine, other in zip(ours, theirs, strict=True):
        mine, other = mine.state_dict(), other.state_dict()
        assert mine["state"].keys() == other["state"].keys()  # the same parameters stepped
        for index, state in mine["state"].items():
            assert state.keys() == other["state"][index].keys()
            for key, value in state.items():
                torch.testing.assert_close(value, other["state"][index][key], **tolerance)
        for group, other_group in zip(mine["param_groups"], other["param_groups"], strict=True):
            assert group == other_group  # learning rates included


SLOW = pytest.mark.slow  # each compiles a graph of its own: about half a minute on 2 cores


@pytest.mark.parametrize(
    "name",
    [
        "reference",
        pytest.param("clip_schedule_adamw", marks=SLOW),
        pytest.param("batchnorm_training", marks=SLOW),
    ],
)
def test_compiled_iteration_updates_as_the_eager_one(name, tmp_path):
    torch.compiler.reset()  # a fresh cache: the graph count is this test's
    eager, eager_trainer, _, _ = train(OPTIONS[name], False, tmp_path / "eager")
    compiled, compiled_trainer, graphs, breaks = train(OPTIONS[name], True, tmp_path / "compiled")
    # One graph for the whole iteration; a scheduled rate compiles it once more, with the rate as
    # an input (Dynamo makes a float that changed dynamic).
    assert (graphs, breaks) == (2 if "schedule" in name else 1, 0)
    assert compiled_trainer.global_step == 4

    close = dict(rtol=1e-5, atol=1e-6)
    for (key, got), wanted in zip(
        compiled.state_dict().items(), eager.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(got, wanted, **close, msg=key)  # weights and buffers
    assert_same_optimizer_states(compiled_trainer.optimizers, eager_trainer.optimizers, **close)
    torch.manual_seed(0)
    initial = ActEnvAgent(state_size=4, action_size=2, **OPTIONS[name])
    for network in ("act", "env"):  # the weights compared above did move
        before, after = trainable(getattr(initial, network)), trainable(getattr(compiled, network))
        assert not all(torch.equal(p, q) for p, q in zip(before, after, strict=True))
    if name != "reference":  # second-stage optimizers hold no state for unreached heads
        a_opt2 = compiled_trainer.optimizers[2]
        assert len(a_opt2.state) < len(trainable(compiled.act))
    if name == "batchnorm_training":  # running statistics moved once per forward pass
        # Each iteration: Act once in each stage; Env once in the first, twice in the second
        # (its own pass and env_q_per_action's).
        assert compiled.act.encode_norm.num_batches_tracked.item() == 4 * (1 + 1)
        assert compiled.env.encode_norm.num_batches_tracked.item() == 4 * (1 + 2)


def adam_1e3(params):
    # Steps ten times the reference's, so that bf16's rounding shows in the weights.
    return torch.optim.Adam(params, lr=1e-3)


@pytest.mark.slow  # compiles a graph of its own
def test_compiled_iteration_runs_bf16_mixed_as_the_eager_one(tmp_path):
    # Autocast applies inside the graph: the compiled bf16-mixed run lands far closer to the
    # eager bf16-mixed run than either does to float32 (here 7.7e-4 against 7.6e-3).
    options = dict(SOLVED, optimizer=adam_1e3)
    torch.compiler.reset()  # a fresh cache: the graph count is this test's
    float32, _, _, _ = train(options, False, tmp_path / "float32")
    eager, _, _, _ = train(options, False, tmp_path / "eager", precision="bf16-mixed")
    compiled, _, graphs, breaks = train(
        options, True, tmp_path / "compiled", precision="bf16-mixed"
    )
    assert (graphs, breaks) == (1, 0)

    def distance(agent, other) -> float:
        pairs = zip(agent.state_dict().values(), other.state_dict().values(), strict=True)
        return max((mine.float() - theirs.float()).abs().max().item() for mine, theirs in pairs)

    from_float32 = distance(eager, float32)
    assert from_float32 > 1e-3  # bf16 did round
    assert distance(compiled, float32) > from_float32 / 2
    assert distance(compiled, eager) < from_float32 / 4


def test_the_first_iteration_is_eager_and_the_graph_runs_from_the_second(tmp_path):
    torch.compiler.reset()
    calls = []

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, module, *rest):
            iteration = module.compiled_iteration
            calls.append(iteration.ready(trainer.optimizers))

    torch.manual_seed(0)
    agent = ActEnvAgent(state_size=4, action_size=2, compile=True)
    counters.clear()
    tiny_trainer(tmp_path, max_steps=3, callbacks=[Spy()]).fit(
        agent, datamodule=OneBatch(make_batch(32))
    )
    assert calls == [True, True, True]  # ready after the first (eager) iteration
    assert counters["stats"]["unique_graphs"] == 1


def test_compile_refuses_an_optimizer_it_cannot_update_in_its_graph(tmp_path):
    agent = ActEnvAgent(
        state_size=4, action_size=2, compile=True, optimizer=lambda p: torch.optim.SGD(p, lr=0.1)
    )
    with pytest.raises(ValueError, match=r"compile=true computes Adam's update.*makes SGD"):
        tiny_trainer(tmp_path, max_steps=1).fit(agent, datamodule=OneBatch(make_batch()))


@pytest.mark.slow  # two runs of two processes, one compiling in each
def test_compiled_iteration_under_ddp_averages_as_the_eager_one(tmp_path):
    from tests.test_ddp import launch_ddp
    from tests.test_ddp_resume import AGENT_OVERRIDES, COLLECTOR, RECORD_AND_SAVE

    config = RECORD_AND_SAVE + COLLECTOR
    runs = {
        compile: launch_ddp(
            tmp_path / str(compile),
            "actenv_cartpole.yaml",
            config,
            *AGENT_OVERRIDES,
            f"--model.init_args.compile={compile}",
        )[0]
        for compile in ("false", "true")
    }
    for ranks in runs.values():
        assert ranks[0]["global_step"] == ranks[1]["global_step"] == 60
        for name, value in ranks[0]["weights"].items():  # averaged gradients: identical ranks
            assert torch.equal(value, ranks[1]["weights"][name]), name
    eager, compiled = runs["false"][0]["weights"], runs["true"][0]["weights"]
    for name, value in eager.items():
        torch.testing.assert_close(compiled[name], value, rtol=1e-5, atol=1e-6, msg=name)
