"""Errors a user can act on. Each message is one line that names the problem and the fix."""

import functools
import shlex
import sys


class UserError(ValueError):
    """Bad input: a flag, a dataset, a run directory."""


class DataError(UserError):
    """A dataset that cannot be found or opened."""


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run after a step, and a checkpoint of that step was saved."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


def one_line(error: Exception, limit: int = 120) -> str:
    """The type and first line of the error's root cause, at most `limit` characters (orbax
    wraps TensorStore's errors in pages of specification)."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def reports_errors(main):
    """Wrap a command-line `main(...) -> int`: a `UserError` becomes `error: ...` on stderr and
    exit code 2, a `NonFiniteLossError` the same with exit code 3, instead of a traceback; an
    `Interrupted` run prints how to resume it and exits with 128 + the signal (130, 143); Ctrl-C
    anywhere else is one line and 130."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (UserError, NonFiniteLossError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2 if isinstance(error, UserError) else 3
        except Interrupted as stop:
            print(f"{stop}; resume with: {shlex.join(sys.orig_argv)}", file=sys.stderr)
            return 128 + stop.signum
        except KeyboardInterrupt:
            # Ctrl-C where no stop handler is installed: before a run's first step is set up,
            # or in a tool. Every file jgan writes is renamed into place whole, so none is torn.
            print("stopped by Ctrl-C (SIGINT)", file=sys.stderr)
            return 130

    return wrapper
