"""duet's one entry point: ``python scripts/train.py {fit,validate,test,predict} --config FILE``.

A thin LightningCLI in subclass mode: any LightningModule and LightningDataModule of the project
(or of any importable package) is chosen in YAML with ``class_path``/``init_args``. Modules take
their optimizers as ``OptimizerCallable`` arguments, so ``auto_configure_optimizers`` is off.
"""

import warnings

from lightning.pytorch.cli import ArgsType, LightningCLI

# ModelCheckpoint warns that manual-optimization checkpoints hold the weights after the step;
# that is what duet wants (the state after iteration k is saved at global_step k).
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
# torchdata's StatefulDataLoader calls a deprecated torch API on every iterator; nothing to act on.
warnings.filterwarnings("ignore", message="'set_vital' is deprecated")


def cli_main(args: ArgsType = None, run: bool = True) -> LightningCLI:
    """Build and (by default) run the CLI; ``args`` is an argument list, as on the command line."""
    return LightningCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        # duet's DataModules shard (MNIST) or own (replay buffers) their data per process, and
        # resumably; Lightning's DistributedSampler would replace that.
        trainer_defaults={"use_distributed_sampler": False},
        seed_everything_default=0,
        args=args,
        run=run,
    )


def main() -> None:
    cli_main()


if __name__ == "__main__":
    main()
