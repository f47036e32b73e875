"""A run directory's checkpoints and config: open it, resume from it, record the settings.

Shared by the image loop (`jgan.train.loop`) and the 2-D benchmark (`jgan.mode_collapse`).
A run resumes from its newest intact checkpoint: damaged newer ones are moved aside (see
`Checkpointer.set_aside`), and the settings are compared with those stored in the checkpoint,
so `config.json` is only a record for people and tools.
"""

from __future__ import annotations

import os
from pathlib import Path

from jgan import config as config_lib
from jgan.checkpoint import Checkpointer, DamagedCheckpointError, one_line
from jgan.environment import note_environment
from jgan.errors import UserError
from jgan.train.distributed import barrier, is_primary
from jgan.train.lock import check_run_directory

CHECKPOINTS = "checkpoints"
CONFIG_FILE = "config.json"


def open_run_directory(workdir: Path, config) -> Checkpointer:
    """Create or reopen a run directory's checkpoints."""
    check_run_directory(workdir)
    if is_primary():
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot create the run directory {workdir} ({error.strerror}): "
                            "choose another --workdir") from None
    barrier("jgan-run-directory")
    return Checkpointer(workdir / CHECKPOINTS, keep=config.train.keep_checkpoints)


def checkpoint_config(checkpointer: Checkpointer, step: int):
    """`(meta, config)` of checkpoint `step`: its metadata and the settings that wrote it."""
    meta = checkpointer.restore_meta(step)
    try:
        return meta, config_lib.from_dict(meta["config"])
    except Exception as error:  # a JSON object that is no config: any of from_dict's errors
        raise checkpointer.damaged(step, f"its config cannot be read: {one_line(error)}") from None


def check_resumable(workdir: Path, config, saved) -> None:
    """A run directory may be resumed only with the settings (`saved`) that made its
    checkpoints."""
    changed = [d for d in config_lib.differences(config_lib.to_dict(saved),
                                                 config_lib.to_dict(config))
               if d[0] not in config_lib.RESUMABLE_FIELDS]
    if changed:
        field, was, now = changed[0]
        raise UserError(f"{workdir} holds a run with {field}={was!r}, not {now!r} (and "
                        f"{len(changed) - 1} more differences): use a new --workdir, or the "
                        "run's own settings to resume it")


def restore_latest(checkpointer: Checkpointer, workdir: Path, config, abstract_state, *,
                   num_keys: int | None = None, log=print):
    """`(state, run_key, meta)` of the run's newest intact checkpoint, or None for a new run.

    The checkpoint must have been written with `config` (up to `RESUMABLE_FIELDS`). Damaged
    newer checkpoints are moved aside with a warning; if none is intact, a `UserError`.
    """
    damaged = []
    for step in reversed(checkpointer.all_steps()):
        try:
            check_resumable(workdir, config, checkpoint_config(checkpointer, step)[1])
            restored = checkpointer.restore(step, abstract_state, num_keys=num_keys)
        except DamagedCheckpointError as error:
            damaged.append(error)
            continue
        for error in damaged:
            log(f"warning: checkpoint {error.step} in {checkpointer.directory} is damaged "
                f"({error.problem}); moved it to {checkpointer.set_aside(error.step)}")
        note_config_file(workdir, log)
        note_environment(restored[2], step, log)
        log(f"resuming {workdir} from step {step}")
        return restored
    if damaged:
        steps = sorted(error.step for error in damaged)
        raise UserError(f"every checkpoint in {checkpointer.directory} is damaged (steps "
                        f"{steps}; {damaged[0].step}: {damaged[0].problem}): move "
                        f"{checkpointer.directory} away to train from step 0, or use a new "
                        "--workdir")
    return None


def note_config_file(workdir: Path, log) -> None:
    """Say when a resumed run's `config.json` is missing or unreadable (`write_config` rewrites
    it from the settings, which the checkpoint has just vouched for)."""
    path = workdir / CONFIG_FILE
    try:
        config_lib.load(path)
    except FileNotFoundError:
        log(f"note: {path} was missing; writing it again")
    except Exception as error:  # JSON or config errors: the checkpoint's config decides
        log(f"note: {path} is unreadable ({type(error).__name__}); rewriting it")


def write_config(config, workdir: Path) -> None:
    """`config.json`: the settings of the run in `workdir`, for people and for `jgan.tools`.

    Written to a temporary file renamed over the old one, so a crash leaves one or the other.
    """
    if is_primary():
        path = workdir / CONFIG_FILE
        partial = path.with_name(f"{CONFIG_FILE}.tmp")
        config_lib.save(config, partial)
        os.replace(partial, path)
    barrier("jgan-config-json")
