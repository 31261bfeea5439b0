"""docs/minimax.py: alternating gradient steps on f(x, y) = x·y orbit; simultaneous ones spiral."""

import importlib.util
import itertools
import math
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "docs" / "minimax.py"
spec = importlib.util.spec_from_file_location("minimax", SOURCE)
minimax = importlib.util.module_from_spec(spec)
spec.loader.exec_module(minimax)


def test_the_first_six_alternating_iterates_are_exact_and_return_to_the_start():
    assert minimax.alternating(6) == [(-1, 2), (-2, 1), (-1, -1), (1, -2), (2, -1), (1, 1)]
    assert minimax.alternating(12)[6:] == minimax.alternating(6)  # a closed orbit


def test_simultaneous_steps_move_away_by_sqrt_2_each():
    points = minimax.simultaneous(6)
    assert points[:3] == [(0, 2), (-2, 2), (-4, 0)]
    radii = [math.hypot(x, y) for x, y in [(1, 1), *points]]
    assert all(math.isclose(b / a, math.sqrt(2)) for a, b in itertools.pairwise(radii))


def test_the_picture_is_drawn(tmp_path):
    minimax.plot(tmp_path / "minimax.png")
    assert (tmp_path / "minimax.png").read_bytes()[:4] == b"\x89PNG"
