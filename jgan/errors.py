"""Errors a user can act on. Each message is one line that names the problem and the fix."""


class UserError(ValueError):
    """Bad input: a flag, a dataset, a run directory."""


class DataError(UserError):
    """A dataset that cannot be found or opened."""


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""
