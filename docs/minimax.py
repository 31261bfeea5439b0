"""The minimax lesson of the reference GAN notebook: gradient steps on f(x, y) = x·y, where x
minimises and y maximises, from (1, 1) with step size 1.

    python docs/minimax.py        # prints both trajectories, writes docs/minimax.png

Alternating updates (what a GAN's training step does: first the discriminator, then the
generator against the updated discriminator): y ascends, y ← y + x; then x descends with the new
y, x ← x − y. Simultaneous updates take both steps from the same point.
"""

from pathlib import Path


def alternating(steps: int, x: float = 1.0, y: float = 1.0) -> list[tuple[float, float]]:
    """(x, y) after each of ``steps`` alternating updates: y ascends first, then x descends."""
    points = []
    for _ in range(steps):
        y = y + x  # ∂f/∂y = x
        x = x - y  # ∂f/∂x = y, the updated y
        points.append((x, y))
    return points


def simultaneous(steps: int, x: float = 1.0, y: float = 1.0) -> list[tuple[float, float]]:
    """(x, y) after each of ``steps`` simultaneous updates from the same point."""
    points = []
    for _ in range(steps):
        x, y = x - y, y + x
        points.append((x, y))
    return points


def plot(path: Path, steps: int = 12) -> None:
    """Both trajectories from (1, 1), each on its own scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(9, 4.5))
    cases = (("alternating", alternating(steps), 3), ("simultaneous", simultaneous(steps), 70))
    for axes, (name, points, limit) in zip(panels, cases, strict=True):
        xs, ys = zip(*[(1.0, 1.0), *points], strict=True)
        axes.plot(xs, ys, "o-", markersize=4, label=f"{steps} {name} steps from (1, 1)")
        axes.plot([0], [0], "k*", markersize=12, label="equilibrium (0, 0)")
        axes.set(xlim=(-limit, limit), ylim=(-limit, limit), title=name)
        axes.set(xlabel="x (minimises x·y)", ylabel="y (maximises x·y)")
        axes.legend(loc="lower left", fontsize=8)
    figure.suptitle("gradient steps on f(x, y) = x·y, step size 1")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    print("alternating: ", alternating(6))
    print("simultaneous:", simultaneous(6))
    plot(Path(__file__).with_name("minimax.png"))
