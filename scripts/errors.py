"""Errors caused by configuration or input reach the user as one line; the traceback on request.

duet raises its own errors with a message that names the setting, file or value and the fix.
LightningCLI and jsonargparse wrap errors raised while they build modules and callbacks in long
chains that end in a dump of the parsed namespace, which buries that message. The command-line
entry points therefore print the first exception of the chain that duet itself raised as
``error: MESSAGE`` and exit with status 1, as they do for a file that cannot be read or written
and for a setting that Lightning refuses (``settings_error``). An exception that carries an
``exit_status`` (training stopped by a signal: 130 for SIGINT, 143 for SIGTERM, 138 for SLURM's
SIGUSR1) ends the process with that status after one line. Any other exception (a bug, in duet
or elsewhere) keeps its full traceback, and
``DUET_DEBUG=1`` keeps it for all.
"""

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DUET_PACKAGES = tuple(
    str(REPOSITORY / name) + os.sep
    for name in ("lightning_modules", "datamodules", "callbacks", "scripts")
)


def raised_by_duet(exception: BaseException) -> bool:
    """Whether the innermost frame of the exception's traceback is duet's own code (its file
    resolved: an environment reached through a symbolic link names it by the link)."""
    frames = traceback.extract_tb(exception.__traceback__)
    return bool(frames) and os.path.realpath(frames[-1].filename).startswith(DUET_PACKAGES)


def duet_error(exception: BaseException) -> BaseException | None:
    """The first exception, from the outermost down its chain of causes, that duet raised."""
    return next((cause for cause in chain(exception) if raised_by_duet(cause)), None)


def chain(exception: BaseException) -> Iterator[BaseException]:
    """The exception, then each one it came from (its cause, else its context), once each."""
    seen = set()
    cause: BaseException | None = exception
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or cause.__context__


def settings_error(exception: BaseException) -> str | None:
    """The one-line message of an error that the run's settings or files caused outside duet's
    code: a file or folder that cannot be read or written (an OSError naming it), or a setting
    that Lightning refuses (its MisconfigurationException)."""
    for cause in chain(exception):
        if isinstance(cause, OSError) and cause.filename:
            reason = cause.strerror or str(cause)
            if isinstance(cause, FileExistsError) and Path(cause.filename).is_file():
                reason = "a file is there, where a folder is needed"  # mkdir's "File exists"
            return (
                f"{cause.filename}: {reason}; check that the path is right and that you may "
                "read and write there."
            )
        if any(kind.__name__ == "MisconfigurationException" for kind in type(cause).__mro__):
            return f"Lightning refuses these settings: {cause}"
    return None


def run_with_clear_errors(main: Callable[[], object]) -> int:
    """Run ``main``; its exit status (0 unless it returns one), or 1 after one ``error:`` line
    for a duet error."""
    try:
        status = main()
    except Exception as exception:
        exit_status = getattr(exception, "exit_status", None)
        if isinstance(exit_status, int) and not os.environ.get("DUET_DEBUG"):
            if not getattr(exception, "quiet", False):  # said once, by the first process
                print(f"stopped: {exception}.", file=sys.stderr)
            return exit_status
        error = duet_error(exception)
        found = str(error) if error is not None else settings_error(exception)
        if found is None or os.environ.get("DUET_DEBUG"):
            raise
        message = " ".join(found.split())  # one line
        print(f"error: {message}\n(set DUET_DEBUG=1 for the full traceback)", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


class ToolParser(argparse.ArgumentParser):
    """argparse's parser for the duet tools (sample, evaluate, play, configs, sweeps): an error
    is one line naming the tool, without argparse's usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (`{self.prog} --help` lists the options)\n")
