"""Sample grids from a fixed noise batch, for every attached logger and as PNG files."""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import Tensor
from torchvision.utils import make_grid, save_image

from duet.callbacks.direct_logging import logger_step
from duet.callbacks.run_folder import run_folder
from duet.datamodules import option_checks
from duet.datamodules.trainer_attributes import fast_dev_run
from duet.lightning_modules.gan_losses import sample_noise
from duet.lightning_modules.sampling import sample_source


class SampleGrid(L.Callback):
    """Every ``every_n_iterations`` training iterations and at the end of training, draws samples
    from the same fixed noise batch and hands the grid to each logger the way it expects it: a
    W&B image, a TensorBoard image, and always a PNG at ``<run folder>/samples/iter_NNNNNN.png``.

    Works with any module that has ``noise_dim`` and ``generate(noise)`` (the GAN family). Only
    rank 0 draws and writes.
    """

    def __init__(
        self, every_n_iterations: int = 250, num_samples: int = 64, nrow: int = 8, seed: int = 0
    ):
        for name, value in (
            ("every_n_iterations", every_n_iterations),
            ("num_samples", num_samples),
            ("nrow", nrow),
        ):
            option_checks.at_least("SampleGrid", name, value, 1)
        self.every_n_iterations = every_n_iterations
        self.num_samples = num_samples
        self.nrow = nrow
        self.seed = seed
        self.noise: Tensor | None = None
        self.last_logged_step = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        source = sample_source(pl_module, "SampleGrid")
        # A collective under DDP: resolved here, on every process.
        self.run_dir = Path(run_folder(trainer))
        generator = torch.Generator().manual_seed(self.seed)
        self.noise = sample_noise(self.num_samples, source.noise_dim, generator=generator)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_iterations == 0:
            self.log_grid(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_grid(trainer, pl_module)

    def log_grid(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or step == self.last_logged_step or fast_dev_run(trainer):
            return  # fast_dev_run: Lightning's debugging run, which writes no files
        self.last_logged_step = step
        assert self.noise is not None  # drawn in setup
        source = sample_source(pl_module, "SampleGrid")
        images = source.generate(self.noise)  # (N, C, H, W) in [-1, 1]
        grid = make_grid((images.float().cpu() + 1) / 2, nrow=self.nrow, pad_value=1.0)  # (3, H, W)
        path = self.run_dir / "samples" / f"iter_{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        for logger in trainer.loggers:  # at the step of the iteration's losses
            if isinstance(logger, WandbLogger):
                logger.log_image("samples", [grid], step=logger_step(step))
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", grid, logger_step(step))
