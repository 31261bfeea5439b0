"""The classifier feature space, FID/KID/IS behaviour, the SampleQuality callback, evaluate.py."""

import json

import pytest
import torch
from torch import nn

from duet.callbacks import SampleQuality
from duet.lightning_modules import GAN, MNISTClassifier
from duet.lightning_modules.networks.lenet import LeNet
from duet.lightning_modules.quality import (
    ClassifierCheckpointError,
    ClassLogits,
    PenultimateFeatures,
    SampleQualityMetrics,
    SharedClassifier,
    classifier_input,
    load_classifier,
    to_uint8,
)
from duet.scripts import evaluate
from tests.conftest import tiny_mnist, tiny_trainer


class BandClassifier(nn.Module):
    """Stand-in for a trained classifier: class k is 'row band k is bright'. Features are the ten
    band brightnesses; logits make a bright band a confident vote."""

    feature_size = 10

    def features(self, images):  # (B, 1, 28, 28) in [-1, 1] -> (B, 10)
        bands = images[:, 0, :20].reshape(len(images), 10, 2 * 28)
        return (bands.mean(dim=2) + 1) / 2

    def head(self, features):  # (B, 10) -> (B, 10) logits
        return 40 * (features - 0.5)

    def forward(self, images):
        return self.head(self.features(images))


def digits(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """uint8 (B, 1, 28, 28) 'digits': band ``label`` bright, with a little pixel noise."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 30, (len(labels), 1, 28, 28), generator=g, dtype=torch.uint8)
    for index, label in enumerate(labels.tolist()):
        images[index, 0, 2 * label : 2 * label + 2] = 255
    return images


BALANCED = torch.arange(10).repeat(60)  # 600 images, 60 of each class


def quality(real, fake):
    metrics = SampleQualityMetrics(BandClassifier(), kid_subset_size=100)
    metrics.update_real(real)
    metrics.update_fake(fake)
    return metrics.compute()


def test_extractors_give_penultimate_features_and_logits():
    lenet = LeNet(feature_size=32).eval()
    shared = SharedClassifier(lenet, classifier_input)
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    expected = lenet.features(classifier_input(images))
    assert torch.equal(PenultimateFeatures(shared)(images), expected)
    assert PenultimateFeatures(shared).num_features == 32
    assert torch.equal(ClassLogits(shared)(images), lenet(classifier_input(images)))
    probe = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)  # torchmetrics' probe shape
    assert PenultimateFeatures(shared)(probe).shape == (1, 32)


def test_extractors_stay_in_eval_mode():
    extractor = PenultimateFeatures(SharedClassifier(LeNet(dropout=0.9), classifier_input))
    extractor.train()
    images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    assert torch.equal(extractor(images), extractor(images.clone()))  # two passes, no dropout
    assert not extractor.shared.classifier.training


def test_the_four_metrics_share_one_classifier_pass_per_batch():
    classifier = BandClassifier()
    passes = []
    classifier.features = lambda images: (
        passes.append(len(images)) or BandClassifier.features(classifier, images)
    )
    metrics = SampleQualityMetrics(classifier, kid_subset_size=10)
    metrics.update_real(digits(BALANCED[:20]))
    metrics.update_fake(digits(BALANCED[:30]))
    metrics.update_fake(digits(BALANCED[:30], seed=1))
    assert passes == [20, 30, 30]  # FID, KID, IS and the class counts: one pass each batch
    assert metrics.compute()["class_counts"] == [6] * 10


def test_kid_and_is_come_from_the_seed_and_leave_the_global_generator_alone():
    def computed(seed: int, global_seed: int) -> dict:
        metrics = SampleQualityMetrics(BandClassifier(), kid_subset_size=50)
        metrics.update_real(digits(BALANCED[:100]))
        metrics.update_fake(digits(BALANCED[:100], seed=1))
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        figures = metrics.compute(seed=seed)
        assert torch.equal(torch.get_rng_state(), state)  # training's draws are not disturbed
        return figures

    first = computed(seed=3, global_seed=5)
    assert computed(seed=3, global_seed=6) == first  # whatever the global generator holds
    other = computed(seed=4, global_seed=5)
    assert other["kid_mean"] != first["kid_mean"] and other["fid"] == first["fid"]


def test_fid_of_a_set_against_itself_is_about_zero():
    images = digits(BALANCED)
    results = quality(images, images)
    assert abs(results["fid"]) < 1e-6
    # KID's unbiased estimate on random 100-image subsets scatters around 0 by about 1e-3.
    assert abs(results["kid_mean"]) < 3e-3


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda x: torch.randint(0, 256, x.shape, dtype=torch.uint8),  # noise
        lambda x: torch.zeros_like(x),  # blank images
        lambda x: digits(torch.full((len(x),), 3)),  # one repeated digit
    ],
    ids=["noise", "blank", "one_digit"],
)
def test_fid_and_kid_grow_when_samples_are_corrupted(corrupt):
    real, same_distribution = digits(BALANCED, seed=0), digits(BALANCED, seed=1)
    clean = quality(real, same_distribution)
    corrupted = quality(real, corrupt(same_distribution))
    assert corrupted["fid"] > 0.5 and corrupted["fid"] > 100 * max(clean["fid"], 1e-4)
    assert corrupted["kid_mean"] > 10 * max(clean["kid_mean"], 1e-4)


def test_inception_score_is_highest_for_balanced_confident_digits():
    # torchmetrics shuffles into 10 splits; 200 images a split keep each split nearly balanced.
    many = torch.arange(10).repeat(200)
    balanced = quality(digits(BALANCED), digits(many))["is"]
    single = quality(digits(BALANCED), digits(torch.full((2_000,), 7)))["is"]
    half = quality(digits(BALANCED), digits(torch.arange(5).repeat(400)))["is"]
    assert balanced == pytest.approx(10, rel=0.05)  # exp(KL): the number of classes
    assert single == pytest.approx(1, rel=0.01)
    assert half == pytest.approx(5, rel=0.05)
    assert single < half < balanced


def test_to_uint8_maps_the_generator_range_onto_pixels():
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0, 1.5])).tolist() == [0, 128, 255, 255]


@pytest.fixture
def classifier_checkpoint(mnist_dir, tmp_path):
    trainer = tiny_trainer(tmp_path / "classifier", max_steps=3, limit_val_batches=2)
    trainer.fit(MNISTClassifier(feature_size=16), datamodule=tiny_mnist(mnist_dir))
    path = tmp_path / "classifier.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_classifier_logs_accuracy_and_loads_as_a_feature_network(
    classifier_checkpoint, mnist_dir, tmp_path
):
    trainer = tiny_trainer(tmp_path, max_steps=1, limit_test_batches=2)
    module = MNISTClassifier.load_from_checkpoint(classifier_checkpoint)
    trainer.test(module, datamodule=tiny_mnist(mnist_dir), verbose=False)
    assert 0 <= float(trainer.callback_metrics["test/acc"]) <= 1
    assert load_classifier(classifier_checkpoint).feature_size == 16


def test_missing_or_wrong_classifier_names_the_command(tmp_path):
    with pytest.raises(ClassifierCheckpointError, match="duet fit --config mnist_classifier"):
        load_classifier(tmp_path / "none.ckpt")
    other = tmp_path / "gan.ckpt"
    torch.save({"state_dict": {}, "duet_module": "duet.lightning_modules.gan.GAN"}, other)
    expected = r"not an MNISTClassifier.*duet fit --config mnist_classifier"
    with pytest.raises(ClassifierCheckpointError, match=expected):
        load_classifier(other)


def test_callback_logs_fid_kid_and_is_every_k_epochs(classifier_checkpoint, mnist_dir, tmp_path):
    callback = SampleQuality(
        str(classifier_checkpoint), every_n_epochs=2, num_samples=60, batch_size=25
    )
    trainer = tiny_trainer(tmp_path, max_epochs=2, limit_train_batches=2, callbacks=[callback])
    trainer.fit(GAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    logged = trainer.callback_metrics
    assert {"val/fid", "val/kid_mean", "val/kid_std", "val/is"} <= set(logged)
    assert callback.metrics.kid.subset_size == 50  # capped by the 50 validation images
    assert int(callback.metrics.fid.real_features_num_samples) == 50  # real images seen once
    assert float(logged["val/fid"]) > 0 and 1 <= float(logged["val/is"]) <= 10


def test_class_shares_name_the_rarest_and_commonest_digit():
    one_class = quality(digits(BALANCED), digits(torch.full((150,), 3)))
    assert one_class["class_counts"] == [0, 0, 0, 150, 0, 0, 0, 0, 0, 0]
    assert (one_class["commonest_class"], one_class["commonest_share"]) == (3, 1.0)
    assert one_class["rarest_share"] == 0.0
    labels = torch.cat([torch.arange(10).repeat(19), BALANCED[:5]])  # 0-4: 20 each, 5-9: 19
    skewed = quality(digits(BALANCED), digits(labels))
    assert skewed["rarest_share"] == 19 / 195 and skewed["rarest_class"] == 5
    assert skewed["commonest_share"] == 20 / 195 and skewed["commonest_class"] == 0


def test_callback_warns_when_a_generator_draws_one_digit(
    classifier_checkpoint, mnist_dir, tmp_path
):
    callback = SampleQuality(str(classifier_checkpoint), num_samples=60, batch_size=25)
    module = GAN(noise_dim=8)
    same_image = torch.linspace(-1, 1, 784).view(1, 1, 28, 28)
    module.generate = lambda noise: same_image.expand(len(noise), -1, -1, -1)  # one class only
    trainer = tiny_trainer(tmp_path, max_epochs=1, limit_train_batches=2, callbacks=[callback])
    with pytest.warns(UserWarning, match=r"SampleQuality: digit \d is 0\.0% of the 60 samples"):
        trainer.fit(module, datamodule=tiny_mnist(mnist_dir))
    logged = trainer.callback_metrics
    assert float(logged["val/rarest_share"]) == 0.0 and float(logged["val/commonest_share"]) == 1.0
    assert "val/rarest_share" in trainer.progress_bar_metrics


def test_callback_is_off_without_a_classifier(mnist_dir, tmp_path):
    callback = SampleQuality(classifier_checkpoint=None)
    trainer = tiny_trainer(tmp_path, max_steps=2, callbacks=[callback])
    trainer.fit(GAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    assert callback.metrics is None and "val/fid" not in trainer.callback_metrics


def test_evaluate_prints_generator_and_real_floor(
    classifier_checkpoint, mnist_dir, tmp_path, capsys
):
    trainer = tiny_trainer(tmp_path, max_steps=2)
    trainer.fit(GAN(noise_dim=8), datamodule=tiny_mnist(mnist_dir))
    gan = tmp_path / "gan.ckpt"
    trainer.save_checkpoint(gan)
    out = tmp_path / "quality.json"
    args = [str(gan), "--classifier", str(classifier_checkpoint), "--num", "80"]
    assert evaluate.main([*args, f"--data.data_dir={mnist_dir}", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "80 samples against 100 real test images" in table
    assert "generator" in table and "real train" in table
    assert "generated digits by class: 0:" in table
    assert "rarest digit " in table and "even: 10.0% each" in table
    results = json.loads(out.read_text())
    assert sum(results["generator"]["class_counts"]) == 80
    torch.manual_seed(123)  # whatever the global generator holds, the figures are the same
    assert evaluate.main([*args, f"--data.data_dir={mnist_dir}", "--json", str(out)]) == 0
    assert json.loads(out.read_text()) == results
    # Another dataset in MNIST's format is read from its own folder, which is not there.
    assert evaluate.main([*args, f"--data.data_dir={mnist_dir}", "--data.dataset=KMNIST"]) == 2
    assert f"KMNIST is not in {(mnist_dir / 'KMNIST' / 'raw').resolve()}" in capsys.readouterr().err
    # The fixture's 'digits' are uniform noise: real train images match the test set far better
    # than an untrained generator does.
    assert results["real train"]["fid"] < results["generator"]["fid"]


def test_evaluate_errors_name_the_fix(tmp_path, capsys):
    assert (
        evaluate.main([str(tmp_path / "none.ckpt"), "--classifier", str(tmp_path / "c.ckpt")]) == 2
    )
    assert "does not exist" in capsys.readouterr().err
