"""`duet sweep`'s report: the table and the learning-curve pictures from finished runs."""

import json
from pathlib import Path

import pytest
import yaml

from duet.scripts import sweep_actenv
from duet.scripts.train import cli_main

REPO = Path(__file__).resolve().parents[1]


def test_a_sweep_reports_finished_runs_even_without_an_evaluation(tmp_path):
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(
        "env_steps: 1300\nthreshold: 475\nseeds: [0, 1]\n"
        "variants:\n  solved: {config: configs/actenv_cartpole_solved.yaml}\n"
    )
    curves = [
        {"greedy": [[500.0, 120.0], [1000.0, 480.0]], "training": [[600.0, 30.0]]},
        {"greedy": [], "training": []},  # a budget that ends before the first evaluation
    ]
    for seed, curve in enumerate(curves):
        run = tmp_path / "runs" / "solved" / f"seed_{seed}" / "run"
        run.mkdir(parents=True)
        result = {"variant": "solved", "seed": seed, "wall_s": 1.0, "curves": curve}
        result |= {"steps_to_threshold": 1000 if seed == 0 else None, "final_step": 300}
        result |= {"final_mean": 480.0 - 470 * seed, "final_std": 0.0, "final_min": 480.0}
        (run / "result.json").write_text(json.dumps(result))
    args = [str(sweep), "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs")]
    assert sweep_actenv.main([*args, "--report-only"], prog="duet sweep") == 0
    report = (tmp_path / "docs" / "sweep_tiny.md").read_text()
    assert report.startswith("# Sweep: ") and "`duet sweep " in report
    assert "| solved | 1/2 |" in report  # one of the two seeds ends ≥ 475
    assert "| 480.0 ± 0.0 (min 480) at 300 | 480.0 |" in report  # its lowest evaluation once solved
    assert "| solved | 1/2 | 0/2 | 1/2 | 245.0 |" in report
    assert (tmp_path / "docs" / "sweep_tiny_solved.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("means", "lowest"),
    [([120, 480, 500, 470, 500], 470), ([120, 476, 500], 476), ([120, 300], None)],
)
def test_the_lowest_evaluation_once_solved_reveals_a_relapse(means, lowest):
    greedy = [[500.0 * (i + 1), mean] for i, mean in enumerate(means)]
    assert sweep_actenv.lowest_after_reaching(greedy, 475) == lowest


def test_a_gan_sweep_trains_scores_each_checkpoint_and_reports(mnist_dir, tmp_path):
    from duet.scripts import sweep_gan
    from tests.test_quality import MNISTClassifier, tiny_mnist, tiny_trainer

    trainer = tiny_trainer(tmp_path / "c", max_steps=1)
    trainer.fit(MNISTClassifier(feature_size=16), datamodule=tiny_mnist(mnist_dir))
    classifier = tmp_path / "classifier.ckpt"
    trainer.save_checkpoint(classifier)
    sweep = tmp_path / "tiny_gan.yaml"
    sweep.write_text(
        "iterations: 4\nevery: 2\nseeds: [3]\nvariants:\n"
        "  small: {config: configs/gan.yaml, args: [--data.batch_size=16]}\n"
    )
    options = ["--data.data_dir", str(mnist_dir), "--classifier", str(classifier), "--num", "40"]
    folders = ["--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs")]
    leftover = tmp_path / "runs/small/seed_3/run/curve/step=6.ckpt"  # of an interrupted attempt
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"")
    assert sweep_gan.main([str(sweep), *options, *folders, "--jobs", "1"], prog="x") == 0
    result = json.loads((tmp_path / "runs/small/seed_3/run/result.json").read_text())
    assert [step for step, _, _ in result["curve"]] == [2, 4]  # every 2 iterations, no leftover
    assert result["curve"][-1][1] == result["generator"]["fid"]  # the last is the final state
    assert sum(result["generator"]["class_counts"]) == 40
    config = (tmp_path / "runs/small/seed_3/run/config.yaml").read_text()
    assert "seed_everything: 3" in config and "max_steps: 4" in config
    report = (tmp_path / "docs" / "sweep_tiny_gan.md").read_text()
    assert report.startswith("# Sweep: ") and "| small | 3 |" in report
    assert (tmp_path / "docs" / "sweep_tiny_gan.png").read_bytes()[:4] == b"\x89PNG"


SWEEP_VARIANTS = [
    (sweep.stem, name, variant)
    for sweep in sorted((REPO / "configs" / "sweeps").glob("*.yaml"))
    for name, variant in yaml.safe_load(sweep.read_text())["variants"].items()
]


@pytest.mark.parametrize(
    ("sweep", "name", "variant"), SWEEP_VARIANTS, ids=[f"{s}-{n}" for s, n, _ in SWEEP_VARIANTS]
)
def test_every_sweep_variant_builds(sweep, name, variant, monkeypatch):
    """A variant's overrides name real options: the run it stands for can be built."""
    monkeypatch.chdir(REPO)
    cli = cli_main([f"--config={variant['config']}", *variant.get("args", [])], run=False)
    base = cli_main([f"--config={variant['config']}"], run=False)
    assert (cli.config == base.config) == (not variant.get("args"))
