"""Errors a user can act on. Each message is one line that names the problem and the fix."""

import functools
import sys


class UserError(ValueError):
    """Bad input: a flag, a dataset, a run directory."""


class DataError(UserError):
    """A dataset that cannot be found or opened."""


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


def reports_errors(main):
    """Wrap a command-line `main(...) -> int`: a `UserError` becomes `error: ...` on stderr and
    exit code 2, a `NonFiniteLossError` the same with exit code 3, instead of a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (UserError, NonFiniteLossError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2 if isinstance(error, UserError) else 3

    return wrapper
