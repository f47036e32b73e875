"""A run directory's checkpoints and config: open it, resume from it, record the settings.

Shared by the image loop (`jgan.train.loop`) and the 2-D benchmark (`jgan.mode_collapse`).
"""

from __future__ import annotations

from pathlib import Path

from jgan import config as config_lib
from jgan.checkpoint import Checkpointer
from jgan.errors import UserError

CHECKPOINTS = "checkpoints"


def check_resumable(workdir: Path, config) -> None:
    """A run directory may be resumed only with the settings that made its checkpoints."""
    path = workdir / "config.json"
    if not path.exists():
        return
    old = config_lib.to_dict(config_lib.load(path))
    changed = [d for d in config_lib.differences(old, config_lib.to_dict(config))
               if d[0] not in config_lib.RESUMABLE_FIELDS]
    if changed:
        field, was, now = changed[0]
        raise UserError(f"{workdir} holds a run with {field}={was!r}, not {now!r} (and "
                        f"{len(changed) - 1} more differences): use a new --workdir, or the "
                        "run's own settings to resume it")


def open_run_directory(workdir: Path, config) -> Checkpointer:
    """Create or reopen a run directory's checkpoints."""
    workdir.mkdir(parents=True, exist_ok=True)
    return Checkpointer(workdir / CHECKPOINTS, keep=config.train.keep_checkpoints)


def restore_latest(checkpointer: Checkpointer, workdir: Path, config, abstract_state, *,
                   num_keys: int | None = None, log=print):
    """`(state, run_key, meta)` of the run's latest checkpoint, or None for a new run.

    The checkpoint must have been written with `config` (up to `RESUMABLE_FIELDS`).
    """
    latest = checkpointer.latest_step()
    if latest is None:
        return None
    check_resumable(workdir, config)
    restored = checkpointer.restore(latest, abstract_state, num_keys=num_keys)
    log(f"resuming {workdir} from step {latest}")
    return restored


def write_config(config, workdir: Path) -> None:
    """`config.json`: the settings of the run in `workdir`, for people and for `jgan.tools`."""
    config_lib.save(config, workdir / "config.json")
