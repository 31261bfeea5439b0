"""A null given on the command line to a field of an option group arrives as None, and the
group's other fields keep their values (scripts/null_options.py)."""

import pytest

from duet.scripts.null_options import with_null_fields_as_mappings
from duet.scripts.train import cli_main

QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]


@pytest.mark.parametrize(
    ("given", "written"),
    [
        (["--model.stabilizers.r1_weight=null"], ["--model.stabilizers={r1_weight: null}"]),
        (["--model.init_args.network.encode_width", "~"], ["--model.network={encode_width: null}"]),
        (["--collector.rating.discount=null"], ["--collector.rating={discount: null}"]),
        (["--model.stabilizers.r1_weight=0.5"], ["--model.stabilizers.r1_weight=0.5"]),
        (["--trainer.max_epochs=null"], ["--trainer.max_epochs=null"]),  # not a group
    ],
)
def test_only_nulls_of_group_fields_are_rewritten(given, written):
    assert with_null_fields_as_mappings(given) == written


def test_a_model_group_field_set_to_null_keeps_the_groups_other_fields(mnist_dir):
    args = ["--config", "gan_recipe", f"--data.data_dir={mnist_dir}", *QUIET]
    cli = cli_main([*args, "--model.init_args.stabilizers.r1_weight", "null"], run=False)
    assert cli.model.r1_weight is None
    assert cli.model.generator_ema is not None  # gan_recipe's ema_decay 0.999 kept
