"""Two-process CPU DDP (gloo) through the real CLI; resumed runs are in test_ddp_resume.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def launch_ddp(
    tmp_path: Path,
    config: str,
    callbacks_yaml: str,
    *overrides: str,
    status: int = 0,
    cwd: Path | None = None,
) -> tuple[list[dict], str]:
    """Two gloo processes of ``scripts/train.py fit``: what each saved in ``tmp_path/ranks``
    (``callbacks_yaml`` formats ``{out}`` as that folder; nothing when the run is expected to
    fail with exit ``status``), and the run's standard error. Without ``cwd`` the run runs in
    ``tmp_path`` without a logger; with one, there with the config's CSV logger (runs/...)."""
    extra = tmp_path / "callbacks.yaml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    extra.write_text(callbacks_yaml.format(out=tmp_path / "ranks"))
    command = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        "fit",
        "--config",
        str(REPO / "configs" / config),
        "--config",
        str(extra),
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        *(() if cwd else ("--trainer.logger=false",)),
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        *overrides,
    ]
    # One thread per process: two processes of two threads on two cores slow each other ~10×.
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run(
        command, cwd=cwd or tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == status, result.stderr[-3000:]
    if status != 0:
        return [], result.stderr
    ranks = [torch.load(tmp_path / "ranks" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    return ranks, result.stderr


def run_ddp(tmp_path: Path, config: str, callbacks_yaml: str, *overrides: str) -> list[dict]:
    return launch_ddp(tmp_path, config, callbacks_yaml, *overrides)[0]


SAVE_RANKS = """
trainer:
  callbacks:
    - class_path: tests.ddp_helpers.SaveRankState
      init_args: {{dirpath: {out}}}
"""


@pytest.mark.slow  # a DDP launch; gan.yaml's ranks are compared in test_ddp_resume.py
def test_dcgan_parameters_stay_identical(tmp_path, mnist_dir):
    rank0, rank1 = run_ddp(
        tmp_path,
        "dcgan.yaml",
        SAVE_RANKS,
        f"--data.data_dir={mnist_dir}",
        "--data.batch_size=16",
        "--trainer.max_steps=2",
    )
    parameters = [
        name for name in rank0["state"] if "running_" not in name and "num_batches" not in name
    ]
    for name in parameters:
        assert torch.equal(rank0["state"][name], rank1["state"][name]), name
    # BatchNorm statistics come from each process's own batch; DDP re-broadcasts rank 0's at
    # every step (sync_batchnorm, GPU only in PyTorch, would make them equal throughout).


def test_python_trainer_with_lightnings_sampler_gets_a_clear_error(mnist_dir):
    from duet.datamodules import MNISTDataModule

    class FakeTrainer:
        world_size, global_rank = 2, 0

        class _accelerator_connector:
            use_distributed_sampler = True

    datamodule = MNISTDataModule(str(mnist_dir), download=False, val_size=50)
    datamodule.trainer = FakeTrainer()
    datamodule.setup("fit")
    with pytest.raises(ValueError, match="use_distributed_sampler=False"):
        datamodule.train_dataloader()


def test_a_finished_run_destroys_its_process_group(mnist_dir, tmp_path, monkeypatch):
    """A DDP process that exits with its gloo group alive can abort after training finished."""
    import torch.distributed as dist

    from duet.scripts.train import cli_main

    monkeypatch.chdir(tmp_path)
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        args = ["fit", "--config", str(REPO / "configs" / "gan.yaml"), "--trainer.fast_dev_run=1"]
        cli_main([*args, f"--data.data_dir={mnist_dir}", "--data.batch_size=16"])
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
