"""Play the greedy policy of an Act/Env checkpoint and print each episode's total reward.

    duet play CHECKPOINT [--episodes 10] [--seed S] [--env-id ID] [--video-dir DIR]

The environment is the one the checkpoint was trained on (with its ``env_kwargs``) unless
``--env-id`` says otherwise; ``module:EnvId`` imports ``module`` first, where an environment of
one's own registers itself.
``--video-dir`` records every episode with gymnasium's RecordVideo; it needs the rendering
extra: ``pip install "duet[render]"``.
"""

import argparse
import sys
from pathlib import Path

from duet.scripts.errors import ToolParser, run_with_clear_errors


def parse_arguments(argv: list[str] | None, prog: str | None) -> argparse.Namespace:
    parser = ToolParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    parser.add_argument("--env-id", help="environment to play (default: the checkpoint's)")
    parser.add_argument("--video-dir", type=Path, help="record videos of every episode here")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    return args


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_arguments(argv, prog)
    # Imported after parsing, so that --help answers without loading torch and Lightning.
    import numpy as np

    from duet.callbacks.playing import load_agent, make_env, play, trained_environment
    from duet.lightning_modules.checkpoints import CheckpointError

    try:
        agent, checkpoint = load_agent(args.checkpoint)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    trained_id, env_kwargs = trained_environment(checkpoint)
    if args.env_id is not None:  # another environment: the checkpoint's env_kwargs are its own
        trained_id, env_kwargs = args.env_id, {}
    env_id = trained_id or "CartPole-v1"
    env = make_env(env_id, args.video_dir, env_kwargs)
    totals = play(agent, env, args.episodes, args.seed)
    env.close()
    for episode, total in enumerate(totals, start=1):
        print(f"episode {episode}: total reward {total:g}")
    print(
        f"mean {np.mean(totals):.1f} ± {np.std(totals):.1f} over {len(totals)} episodes on {env_id}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_with_clear_errors(main))
