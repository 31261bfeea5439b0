"""Loggers named in ``trainer.logger`` get what the ``wandb:`` section gets: the full config, and
on resume the same run; the W&B options people set reach the run."""

import copy
import textwrap
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from duet.scripts.train import cli_main
from tests.test_wandb_and_checkpoints import REPO, gan_args, isolated, wandb_run_files  # noqa: F401
from tests.wandb_records import finished_records, run_contents


def run_record(run_file: Path):
    (record,) = [r.run for r in finished_records(run_file) if r.WhichOneof("record_type") == "run"]
    return record


def test_a_plain_wandb_logger_gets_the_config_and_continues_its_run(mnist_dir, tmp_path):
    logger = [
        "--trainer.logger=lightning.pytorch.loggers.WandbLogger",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'wb'}",
        "--trainer.logger.init_args.offline=true",
        "--trainer.logger.init_args.project=plain",
    ]
    cli_main(gan_args(mnist_dir, *logger, "--trainer.max_steps=3"))
    (first,) = sorted((tmp_path / "wb").glob("wandb/offline-run-*/run-*.wandb"))
    config, _ = run_contents(first)
    assert config["model"]["class_path"] == "duet.lightning_modules.GAN"
    (checkpoint,) = (tmp_path / "wb" / "plain").glob("*/checkpoints/last.ckpt")
    # One folder holds the run: its checkpoints, its config and its samples (gan.yaml's grid).
    run = checkpoint.parents[1]
    assert run.name == first.stem.removeprefix("run-")  # <save_dir>/<project>/<W&B run id>
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 3 and saved["ckpt_path"] is None
    # W&B holds every section of config.yaml, value for value (beside the hyperparameters that
    # Lightning logs itself, under their own top-level keys).
    assert {key: config[key] for key in saved} == saved
    assert list((run / "samples").glob("iter_*.png"))
    assert not (tmp_path / "wb" / "config.yaml").exists()
    resume = ["--trainer.max_steps=5", f"--ckpt_path={checkpoint}"]
    cli = cli_main(gan_args(mnist_dir, *logger, *resume))
    assert cli.trainer.global_step == 5
    runs = sorted((tmp_path / "wb").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 2 and {run.stem for run in runs} == {first.stem}  # one W&B run id


def test_the_wandb_section_passes_entity_name_group_and_tags(mnist_dir, tmp_path):
    options = ["--wandb.enabled=true", "--wandb.entity=lab", "--wandb.name=first-try"]
    options += ["--wandb.group=seeds", "--wandb.tags=[a,b]", "--trainer.max_steps=1"]
    cli_main(gan_args(mnist_dir, *options))
    (run_file,) = wandb_run_files(tmp_path / "runs" / "gan" / "version_0")
    record = run_record(run_file)
    assert (record.entity, record.display_name, record.run_group) == ("lab", "first-try", "seeds")
    assert list(record.tags) == ["a", "b"]


def test_a_tensorboard_logger_gets_the_config_and_resumes_in_its_folder(mnist_dir, tmp_path):
    logger = [
        "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'tb'}",
        "--trainer.logger.init_args.name=gan",
    ]
    cli_main(gan_args(mnist_dir, *logger, "--trainer.max_steps=3"))
    folder = tmp_path / "tb" / "gan" / "version_0"
    checkpoint = folder / "checkpoints" / "last.ckpt"
    cli_main(gan_args(mnist_dir, *logger, "--trainer.max_steps=5", f"--ckpt_path={checkpoint}"))
    assert [path.name for path in (tmp_path / "tb" / "gan").iterdir()] == ["version_0"]
    assert list((folder / "samples").glob("iter_*.png"))
    steps, texts = [], []
    for events in sorted(folder.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events)).Reload()
        steps += [event.step for event in accumulator.Scalars("train/d_loss")]
        texts += [
            t.tensor_proto.string_val[0].decode()
            for t in accumulator.Tensors("config/text_summary")
        ]
    assert steps == [0, 1, 2, 3, 4]  # the resumed run's iterations follow in the same folder
    # One config per fit, as a markdown code block: YAML indented by four spaces.
    first, resumed = [yaml.safe_load(textwrap.dedent(text)) for text in texts]
    assert first["model"]["class_path"] == "duet.lightning_modules.GAN"
    assert first["trainer"]["logger"]["init_args"]["save_dir"] == str(tmp_path / "tb")
    # The resumed fit's config is the first's with exactly what the resume changed; the logger's
    # version is pinned to the first run's folder (continue_logger_runs).
    expected = copy.deepcopy(first)
    expected["trainer"]["max_steps"] = 5
    expected["ckpt_path"] = str(checkpoint)
    expected["trainer"]["logger"]["init_args"]["version"] = 0
    assert first["trainer"]["max_steps"] == 3 and first["ckpt_path"] is None
    assert first["trainer"]["logger"]["init_args"]["version"] is None
    assert resumed == expected
    assert yaml.safe_load((folder / "config.yaml").read_text()) == resumed  # the newest fit's
