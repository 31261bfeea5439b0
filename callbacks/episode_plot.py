"""Per-episode records of the agent's training and their plot."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt


class EpisodeHistory:
    """Return, running mean return and the latest four losses of every training episode."""

    def __init__(self) -> None:
        self.returns: list[float] = []
        self.mean_returns: list[float] = []
        self.losses: dict[str, list[float]] = {}

    def __len__(self) -> int:
        return len(self.returns)

    def append(self, episode_return: float, mean_return: float, losses: dict[str, float]) -> None:
        self.returns.append(episode_return)
        self.mean_returns.append(mean_return)
        for name, value in losses.items():
            self.losses.setdefault(name, []).append(value)

    def state_dict(self) -> dict:
        return {"returns": self.returns, "mean_returns": self.mean_returns, "losses": self.losses}

    def load_state_dict(self, state: dict) -> None:
        self.returns, self.mean_returns = list(state["returns"]), list(state["mean_returns"])
        self.losses = {name: list(values) for name, values in state["losses"].items()}

    def plot(self, path: str | Path) -> Path:
        """Episode return (raw and running mean) above the four losses, as a PNG at ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        episodes = range(1, len(self.returns) + 1)
        figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
        top.plot(episodes, self.returns, lw=0.6, alpha=0.5, label="return")
        top.plot(episodes, self.mean_returns, lw=1.8, label="running mean")
        top.set_ylabel("episode return")
        top.legend(loc="upper left")
        for name, values in self.losses.items():
            # Losses start with the first training iteration: align them to the last episodes.
            bottom.plot(episodes[len(episodes) - len(values) :], values, lw=0.8, label=name)
        bottom.set_xlabel("episode")
        bottom.set_ylabel("loss at episode end")
        if self.losses:
            bottom.legend(loc="upper right", fontsize="small")
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path
