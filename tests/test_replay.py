"""The replay ring buffer, its IterableDataset and the experience DataModule."""

import numpy as np
import pytest
import torch

from duet.datamodules import ExperienceDataModule, ReplayBuffer, ReplayDataset


def add(buffer, episode, count, start=0.0, action=1):
    """``count`` transitions of ``episode`` whose states count up from ``start``; their slots."""
    states = np.arange(start, start + count, dtype=np.float32)[:, None].repeat(buffer.state_size, 1)
    return buffer.add(
        episode=np.full(count, episode),
        prev_action=np.zeros(count, dtype=np.int64),
        state=states,
        action=np.full(count, action),
        next_state=states + 1,
        reward=np.ones(count, dtype=np.float32),
        terminated=np.zeros(count, dtype=bool),
        truncated=np.zeros(count, dtype=bool),
    )


def test_transitions_are_unrated_until_their_episode_ends():
    buffer = ReplayBuffer(capacity=10, state_size=2)
    slots = add(buffer, episode=0, count=3)
    assert len(buffer) == 3 and buffer.num_rated() == 0
    with pytest.raises(RuntimeError, match="holds 3 transitions but none is rated"):
        buffer.sample(4)
    assert buffer.rate(0, slots, 0.006) == 3
    assert torch.allclose(buffer.tensors["rate"][:3], torch.tensor(0.006))


def test_each_transition_can_have_its_own_rate():
    buffer = ReplayBuffer(capacity=10, state_size=2)
    add(buffer, episode=0, count=2)
    slots = add(buffer, episode=1, count=3)
    assert slots.tolist() == [2, 3, 4]
    buffer.rate(1, slots, np.array([0.9, 0.5, 0.1]))
    assert buffer.tensors["rate"][:5].tolist() == pytest.approx([-1, -1, 0.9, 0.5, 0.1])


def test_unrated_transitions_are_never_sampled():
    buffer = ReplayBuffer(capacity=100, state_size=1)
    slots = add(buffer, episode=0, count=5, start=0)  # will be rated
    add(buffer, episode=1, count=50, start=100)  # episode still running
    buffer.rate(0, slots, 0.5)
    batch = buffer.sample(2_000, torch.Generator().manual_seed(0))
    assert batch.state.max() < 5  # only episode 0's states 0..4
    assert set(batch.state[:, 0].tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}  # uniform over all five
    assert torch.all(batch.rate == 0.5)


def test_ring_wraps_around_and_overwrites_the_oldest():
    buffer = ReplayBuffer(capacity=8, state_size=1)
    first = add(buffer, episode=0, count=6, start=0)
    second = add(buffer, episode=1, count=5, start=10)
    assert second.tolist() == [6, 7, 0, 1, 2]
    assert len(buffer) == 8 and buffer.position == 3
    assert buffer.tensors["state"][:, 0].tolist() == [12, 13, 14, 3, 4, 5, 10, 11]
    assert buffer.tensors["episode"].tolist() == [1, 1, 1, 0, 0, 0, 1, 1]
    assert buffer.rate(1, second, 1.0) == 5  # all five, across the wrap
    assert buffer.rate(0, first, 0.2) == 3  # its first three were overwritten
    assert buffer.tensors["rate"].tolist() == pytest.approx([1, 1, 1, 0.2, 0.2, 0.2, 1, 1])


def test_an_episode_longer_than_the_ring_keeps_the_rates_of_its_latest_transitions():
    buffer = ReplayBuffer(capacity=4, state_size=1)
    slots = np.concatenate([add(buffer, episode=0, count=1, start=t) for t in range(6)])
    assert slots.tolist() == [0, 1, 2, 3, 0, 1]
    assert buffer.rate(0, slots, np.arange(6) / 10) == 6
    # Slots 0 and 1 hold transitions 4 and 5 now, and carry their rates.
    assert buffer.tensors["state"][:, 0].tolist() == [4, 5, 2, 3]
    assert buffer.tensors["rate"].tolist() == pytest.approx([0.4, 0.5, 0.2, 0.3])


def test_a_rewritten_slot_becomes_unrated_again():
    buffer = ReplayBuffer(capacity=4, state_size=1)
    buffer.rate(0, add(buffer, episode=0, count=4), 1.0)
    add(buffer, episode=1, count=1)
    assert buffer.tensors["rate"].tolist() == [-1.0, 1.0, 1.0, 1.0]


def test_sample_is_vectorised_and_seeded():
    buffer = ReplayBuffer(capacity=1_000, state_size=4)
    buffer.rate(0, add(buffer, episode=0, count=1_000), 0.3)
    first = buffer.sample(256, torch.Generator().manual_seed(5))
    second = buffer.sample(256, torch.Generator().manual_seed(5))
    assert first.state.shape == (256, 4) and first.action.shape == (256,)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_state_dict_round_trip_keeps_contents_position_and_rates():
    buffer = ReplayBuffer(capacity=8, state_size=3)
    buffer.rate(0, add(buffer, episode=0, count=5), 0.4)
    add(buffer, episode=1, count=6, start=20)
    state = buffer.state_dict()
    restored = ReplayBuffer(capacity=8, state_size=3)
    restored.load_state_dict(torch.load(_saved(state), weights_only=True))
    assert (restored.position, len(restored)) == (buffer.position, len(buffer))
    for name, tensor in buffer.tensors.items():
        assert torch.equal(restored.tensors[name], tensor), name
    add(restored, episode=2, count=1, start=99)  # the NumPy write views still point at the tensors
    assert restored.tensors["state"][buffer.position, 0] == 99


def _saved(state):
    import io

    file = io.BytesIO()
    torch.save(state, file)
    file.seek(0)
    return file


def test_loading_a_buffer_of_another_shape_is_refused():
    state = ReplayBuffer(capacity=8, state_size=3).state_dict()
    with pytest.raises(ValueError, match="capacity or state size differ"):
        ReplayBuffer(capacity=8, state_size=4).load_state_dict(state)


def test_dataset_yields_an_epoch_of_batches_from_the_live_buffer():
    buffer = ReplayBuffer(capacity=50, state_size=1)
    buffer.rate(0, add(buffer, episode=0, count=10), 1.0)
    dataset = ReplayDataset(buffer, batch_size=7, batches_per_epoch=3, generator=torch.Generator())
    batches = list(dataset)
    assert len(batches) == len(dataset) == 3 and batches[0].state.shape == (7, 1)
    buffer.rate(1, add(buffer, episode=1, count=10, start=100), 1.0)
    later = torch.cat([batch.state for batch in dataset])
    assert later.max() >= 100  # sees transitions added after the dataset was made


def test_datamodule_rejects_a_buffer_smaller_than_a_batch():
    with pytest.raises(ValueError, match=r"capacity=500 is smaller than batch_size=1000"):
        ExperienceDataModule(capacity=500, batch_size=1_000)


def test_datamodule_state_restores_a_buffer_built_later():
    source = ExperienceDataModule(capacity=10, batch_size=2, seed=1)
    add(source.build_buffer(state_size=2), episode=0, count=4)
    target = ExperienceDataModule(capacity=10, batch_size=2, seed=2)
    target.load_state_dict(source.state_dict())  # before the environment is known
    buffer = target.build_buffer(state_size=2)
    assert len(buffer) == 4 and torch.equal(buffer.tensors["state"], source.buffer.tensors["state"])
    assert torch.equal(target.generator.get_state(), source.generator.get_state())


def test_rejection_sampling_is_uniform_over_the_rated_transitions():
    buffer = ReplayBuffer(capacity=100, state_size=1)
    buffer.rate(0, add(buffer, episode=0, count=90, start=0), 0.5)
    add(buffer, episode=1, count=10, start=90)  # still running: states 90..99
    batch = buffer.sample(90_000, torch.Generator().manual_seed(0))
    counts = torch.bincount(batch.state[:, 0].long(), minlength=100)
    assert counts[90:].sum() == 0
    # 1,000 expected per rated state; a standard deviation is ~31.
    assert counts[:90].min() > 850 and counts[:90].max() < 1_150


def test_an_empty_buffer_says_so_before_drawing():
    with pytest.raises(RuntimeError, match=r"replay buffer is empty.*prefill_steps"):
        ReplayBuffer(capacity=10, state_size=2).sample(4)
