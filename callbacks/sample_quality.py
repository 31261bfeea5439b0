"""FID, KID and Inception Score of a GAN's samples against the real validation images, and which
digits the samples are."""

from collections.abc import Iterable, Sized
from typing import Protocol, runtime_checkable

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from duet.datamodules import option_checks
from duet.datamodules.trainer_attributes import attached_datamodule
from duet.lightning_modules.gan_losses import sample_noise
from duet.lightning_modules.quality import SampleQualityMetrics, load_classifier, to_uint8
from duet.lightning_modules.sampling import sample_source


@runtime_checkable
class ValidationImages(Protocol):
    """What SampleQuality reads of the DataModule (duet's image DataModules, set up): the
    validation images and a loader of ``(images, labels)`` batches over them."""

    val_set: Sized

    def val_dataloader(self) -> Iterable: ...


def validation_images(trainer: L.Trainer) -> ValidationImages:
    """The trainer's DataModule, refused in one line unless it holds validation images."""
    datamodule = attached_datamodule(trainer)
    if not isinstance(datamodule, ValidationImages):
        raise TypeError(
            "SampleQuality compares samples with the DataModule's validation images (its "
            f"val_set), but the datamodule is a {type(datamodule).__name__}."
        )
    return datamodule


class SampleQuality(L.Callback):
    """Every ``every_n_epochs`` training epochs, draws ``num_samples`` samples and logs ``val/fid``,
    ``val/kid_mean``, ``val/kid_std`` and ``val/is`` against the datamodule's validation images, in
    the feature space of a trained MNIST classifier. Off when ``classifier_checkpoint`` is None.

    It also logs which digits the classifier sees in the samples: ``val/rarest_share`` (on the
    progress bar) and ``val/rarest_digit``, ``val/commonest_share`` and ``val/commonest_digit``.
    An even spread is 0.1 each. When the rarest share falls below ``collapse_share`` a warning
    names the digit the generator is dropping (mode collapse); a ModelCheckpoint can keep the
    checkpoint with the best coverage (``monitor: val/rarest_share``, ``mode: max``).

    Under DDP each process draws its share of the samples and of the real images, and torchmetrics
    reduces the metric states across processes, so every rank logs the same values once.
    A ModelCheckpoint can monitor ``val/fid`` (mode ``min``).
    """

    def __init__(
        self,
        classifier_checkpoint: str | None = "checkpoints/mnist_classifier.ckpt",
        every_n_epochs: int = 1,
        num_samples: int = 5_000,
        batch_size: int = 500,
        kid_subset_size: int = 1_000,
        seed: int = 0,
        collapse_share: float | None = 0.02,
    ) -> None:
        option_checks.at_least("SampleQuality", "every_n_epochs", every_n_epochs, 1)
        option_checks.at_least("SampleQuality", "num_samples", num_samples, 2)
        option_checks.at_least("SampleQuality", "batch_size", batch_size, 1)
        option_checks.at_least("SampleQuality", "kid_subset_size", kid_subset_size, 2)
        if collapse_share is not None:
            option_checks.between(
                "SampleQuality", "collapse_share", collapse_share, 0, 1, closed=False
            )
        self.classifier_checkpoint = classifier_checkpoint
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.kid_subset_size = kid_subset_size
        self.seed = seed
        self.collapse_share = collapse_share
        self.metrics: SampleQualityMetrics | None = None
        self.real_seen = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.classifier_checkpoint is None or self.metrics is not None:
            return
        num_real = len(validation_images(trainer).val_set)
        # KID compares random subsets and needs both sample sets at least that large.
        subset = min(self.kid_subset_size, self.num_samples, num_real)
        self.metrics = SampleQualityMetrics(load_classifier(self.classifier_checkpoint), subset)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.metrics is None or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        values = self.evaluate(trainer, pl_module)
        logged = {f"val/{name}": values[name] for name in ("fid", "kid_mean", "kid_std", "is")}
        logged["val/commonest_share"] = values["commonest_share"]
        logged["val/commonest_digit"] = float(values["commonest_class"])
        logged["val/rarest_digit"] = float(values["rarest_class"])
        pl_module.log_dict(logged, on_step=False, on_epoch=True)
        pl_module.log("val/rarest_share", values["rarest_share"], prog_bar=True, on_epoch=True)
        if self.collapse_share is not None and values["rarest_share"] < self.collapse_share:
            rank_zero_warn(
                f"SampleQuality: digit {values['rarest_class']} is "
                f"{values['rarest_share']:.1%} of the {self.num_samples} samples after epoch "
                f"{trainer.current_epoch + 1} (an even spread is 10%): the generator is dropping "
                f"it (mode collapse). Counts 0-9: {values['class_counts']}."
            )

    @torch.no_grad()
    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        rank, world = trainer.global_rank, trainer.world_size
        metrics, source = self.metrics, sample_source(pl_module, "SampleQuality")
        assert metrics is not None  # on_train_epoch_end calls this only once setup built them
        metrics.to(pl_module.device)
        if not self.real_seen:  # the real statistics are kept across evaluations
            for index, (images, _) in enumerate(validation_images(trainer).val_dataloader()):
                if index % world == rank:
                    metrics.update_real(images.to(pl_module.device))
            self.real_seen = True
        # The same noise at every evaluation, a different share on every rank.
        generator = torch.Generator().manual_seed(self.seed + rank)
        share = range(rank * self.batch_size, self.num_samples, world * self.batch_size)
        for start in share:
            count = min(self.batch_size, self.num_samples - start)
            noise = sample_noise(count, source.noise_dim, generator=generator)
            metrics.update_fake(to_uint8(source.generate(noise)))
        values = metrics.compute(self.seed)
        metrics.reset_fake()
        return values
