"""Metrics that callbacks write to the loggers themselves, at the step Lightning would use."""

import lightning as L


def logger_step(trainer: L.Trainer) -> int:
    """The step at which Lightning's loggers record the running training iteration: k − 1 for
    iteration k (counting from 1), in its start and end hooks alike; after the last iteration,
    the number of iterations. Lightning keeps it in a private counter, read here only (a test
    pins it against Lightning's own metrics rows)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def log_to_loggers(trainer: L.Trainer, metrics: dict[str, float]) -> None:
    """Write ``metrics`` to every logger from process 0, at ``logger_step``. For values that
    ``self.log`` would keep only on ``log_every_n_steps`` boundaries (every episode, every
    evaluation), lined up with the losses of the same iteration."""
    if trainer.is_global_zero:
        step = logger_step(trainer)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
