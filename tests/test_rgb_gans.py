"""DCGAN and WGAN-GP on RGB images through duet: a folder, a tensor file and a torchvision
dataset at 32×32 and 64×64 train, resume exactly mid-epoch, sample and are scored (a small
feature network stands in for Inception, whose weights need the network)."""

import json
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from duet.lightning_modules import inception
from duet.scripts import evaluate, sample
from duet.scripts.train import cli_main
from tests.test_image_data import write_images

SMALL = [
    "--model.init_args.generator.init_args.width=8",
    "--model.init_args.discriminator.init_args.width=8",
    "--data.init_args.batch_size=4",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def fit(config: str, source, size: int, *extra: str):
    data = [f"--data.init_args.source={source}", f"--data.init_args.image_size={size}"]
    return cli_main(["fit", "--config", config, *data, *SMALL, *extra])


class SmallFakeData(torchvision.datasets.FakeData):
    """torchvision's offline dataset, 12 images of 3×40×40 (3 batches of 4 an epoch)."""

    def __init__(self, **options) -> None:
        super().__init__(size=12, image_size=(3, 40, 40))


@pytest.fixture
def sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torchvision.datasets, "FakeData", SmallFakeData)
    folder = write_images(tmp_path / "pets", per_class=6)  # 12 images: 3 batches of 4 an epoch
    torch.save(torch.rand(12, 3, 48, 48), tmp_path / "images.pt")
    return {"folder": folder, "tensor": tmp_path / "images.pt", "torchvision": "FakeData"}


@pytest.mark.parametrize("source", ["folder", "torchvision", "tensor"])
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("config", ["dcgan_rgb", "wgan_gp_rgb"])
def test_rgb_configs_train_and_sample_at_32_and_64(config, size, source, sources):
    cli = fit(config, sources[source], size, "--trainer.max_steps=2")
    assert cli.trainer.global_step == 2 and cli.model.image_shape == (3, size, size)
    checkpoint = Path(f"runs/{config}/version_0/checkpoints/last.ckpt")
    assert sample.main([str(checkpoint), "--num", "2", "--out", "s.pt"]) == 0
    assert torch.load("s.pt").shape == (2, 3, size, size)


@pytest.mark.parametrize(
    ("config", "source"), [("dcgan_rgb", "folder"), ("wgan_gp_rgb", "torchvision")]
)
def test_an_rgb_run_resumed_mid_epoch_ends_exactly_as_an_uninterrupted_one(config, source, sources):
    whole = fit(config, sources[source], 32, "--trainer.max_steps=4")
    fit(config, sources[source], 32, "--trainer.max_steps=2")  # after 2 of the epoch's 3 batches
    resumed = fit(config, sources[source], 32, "--trainer.max_steps=4", "--ckpt_path=last")
    assert resumed.trainer.global_step == 4
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


class TinyFeatures(nn.Module):
    """Stands in for Inception: features of 8 and 5 "classes" from a fixed random conv."""

    feature_size, num_classes = 8, 5

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=4), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.fc = nn.Linear(8, 5)

    def features(self, images):
        return self.conv(images.float() / 255)

    def head(self, features):
        return self.fc(features)


@pytest.mark.parametrize(
    ("config", "source"), [("dcgan_rgb", "folder"), ("wgan_gp_rgb", "torchvision")]
)
def test_evaluate_scores_an_rgb_checkpoint_in_inception_features(
    config, source, sources, monkeypatch, capsys
):
    fit(config, sources[source], 32, "--trainer.max_steps=1")
    asked = []
    monkeypatch.setattr(
        inception, "inception_features", lambda w: asked.append(w) or TinyFeatures()
    )
    checkpoint = f"runs/{config}/version_0/checkpoints/last.ckpt"
    capsys.readouterr()
    assert evaluate.main([checkpoint, "--num", "6", "--json", "scores.json"]) == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[0] == "6 samples against 6 real images"
    )  # half of the 12, the other half the floor
    assert "digit" not in out and asked == [None]
    scores = json.loads(Path("scores.json").read_text())
    for row in ("generator", "real train"):
        assert all(
            torch.isfinite(torch.tensor(scores[row][key])) for key in ("fid", "kid_mean", "is")
        )
    assert scores["generator"]["fid"] != scores["real train"]["fid"]


def test_inception_without_its_package_or_weights_is_one_line(monkeypatch, tmp_path):
    import importlib.util
    import urllib.error

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name: None if name == "torch_fidelity" else find_spec(name),
    )
    with pytest.raises(
        inception.FeatureWeightsError, match=r"needs torch-fidelity.*duet\[inception\]"
    ):
        inception.inception_features()
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    pytest.importorskip("torch_fidelity")
    import torchmetrics.image.fid as fid

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(fid, "NoTrainInceptionV3", offline)
    expected = (
        r"Without internet, download https://.*/(weights-inception\S+) elsewhere and put it at .*\1"
    )
    with pytest.raises(inception.FeatureWeightsError, match=expected):
        inception.inception_features()


def test_inception_features_give_torchmetrics_own_fid(tmp_path, monkeypatch):
    pytest.importorskip("torch_fidelity")
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity
    from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3

    from duet.lightning_modules.quality import SampleQualityMetrics

    with monkeypatch.context() as offline:  # the network with random weights, saved as a file
        offline.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: None)
        offline.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda *a: None)
        torch.manual_seed(0)
        random_network = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
    torch.save(random_network.state_dict(), tmp_path / "weights.pth")
    real, fake = (torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8) for _ in range(2))
    ours = SampleQualityMetrics(
        inception.inception_features(tmp_path / "weights.pth"),
        kid_subset_size=3,
        prepare=inception.inception_input,
    )
    theirs = FrechetInceptionDistance(feature_extractor_weights_path=str(tmp_path / "weights.pth"))
    ours.update_real(real), ours.update_fake(fake)
    theirs.update(real, real=True), theirs.update(fake, real=False)
    fid = ours.compute()["fid"]
    assert fid > 0 and fid == pytest.approx(float(theirs.compute()), rel=1e-6)
