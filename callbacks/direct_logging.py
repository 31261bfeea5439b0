"""Metrics that callbacks write to the loggers themselves, at the step Lightning would use."""

import lightning as L


def logger_step(iteration: int) -> int:
    """The step at which Lightning's loggers record the metrics of training iteration
    ``iteration`` (counting from 1): one less, since its counter advances after logging."""
    return max(iteration - 1, 0)


def log_to_loggers(trainer: L.Trainer, metrics: dict[str, float], iteration: int) -> None:
    """Write ``metrics`` of training iteration ``iteration`` to every logger from process 0, on
    the row of that iteration's losses. For values that ``self.log`` would keep only on
    ``log_every_n_steps`` boundaries (every episode, every evaluation)."""
    if trainer.is_global_zero:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=logger_step(iteration))
