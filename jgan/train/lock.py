"""One run per run directory: a second process on the same directory is refused, naming the first.

The lock is `fcntl.flock` on `RUN_DIR/.lock`, which the kernel releases when its holder dies, so a
killed run never leaves a lock behind; the file only records who held it last (PID, host, start).
In a multi-process job, process 0 holds it for the job.

A run directory may come from someone else, so before anything is written in it,
`check_run_directory` refuses one whose entries that jgan writes are symbolic links (which would
make a run write outside its directory) or files where folders belong.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import socket
import time
from pathlib import Path

import numpy as np

from jgan.errors import UserError
from jgan.files import no_follow, remove_leftover_temporaries
from jgan.train.distributed import broadcast, is_primary

LOCK_FILE = ".lock"
# What the trainers write in a run directory: files, and folders with the entries of each that
# jgan writes or reads (orbax's steps; the sample grids that make training.gif).
RUN_FILES = (LOCK_FILE, "config.json", "history.csv", "seeds.csv", "loss_curve.png",
             "training.gif", "results.json", "results.md", "modes.png", "accuracy.png",
             "predictions.png", "features_pca.png", "features_pca.npz")
RUN_FOLDERS = {"checkpoints": "*", "best": "*", "damaged_checkpoints": "*", "samples": "*.png"}


def check_run_directory(workdir: Path) -> None:
    """A one-line `UserError` for a `workdir` that is a file, or that holds a link or a file
    where jgan writes (see the module docstring)."""
    if workdir.exists() and not workdir.is_dir():
        raise UserError(f"--workdir {workdir} is a file, not a directory: pass a new or existing "
                        "run directory")
    if not workdir.is_dir():
        _refuse_file_above(workdir)
        return
    for name in (*RUN_FILES, *RUN_FOLDERS):
        _refuse_link(workdir, workdir / name)
    for name, pattern in RUN_FOLDERS.items():
        folder = workdir / name
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{folder} is a file, not a folder: jgan keeps the run's {name} "
                            f"there, so move the file out of {workdir}, or use another --workdir")
        if folder.is_dir():
            with os.scandir(folder) as entries:
                for entry in entries:
                    if fnmatch.fnmatch(entry.name, pattern):
                        _refuse_link(workdir, Path(entry.path))


def _refuse_file_above(workdir: Path) -> None:
    """A new `workdir` is made with its missing parents, which a file among them stops."""
    existing = next(parent for parent in workdir.absolute().parents if parent.exists())
    if not existing.is_dir():
        raise UserError(f"--workdir {workdir}: {existing} is a file, not a folder, so the run "
                        "directory cannot be made inside it: choose another --workdir")


def _refuse_link(workdir: Path, path: Path) -> None:
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link (to {os.readlink(path)}): a run writes only "
                        f"inside its directory, never through links, so replace the link with a "
                        f"copy of what it points to, or use another --workdir than {workdir}")


@contextlib.contextmanager
def hold_run_directory(workdir: Path):
    """Create `workdir` if needed and hold its lock for the duration of the block."""
    check_run_directory(workdir)
    handle, holder = None, None
    if is_primary():
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            handle, holder = _lock(workdir / LOCK_FILE)
            if handle is not None:  # this run alone writes here now
                for folder in (workdir, *(workdir / name for name in RUN_FOLDERS)):
                    remove_leftover_temporaries(folder)
        except OSError as error:  # not writable: permissions, a read-only or full disk
            raise UserError(f"cannot write the run directory {workdir} ({error.strerror}: "
                            f"{error.filename}): choose another --workdir, or make it "
                            "writable") from None
    # Every process of a job learns whether process 0 got the lock, and stops with it if not.
    holder_pid = broadcast(np.int64(holder["pid"] if holder else 0))
    if holder_pid:
        if holder is None:
            raise UserError(f"{workdir} is in use by process {holder_pid} (on process 0's host):"
                            " wait for that run to finish, or use another --workdir")
        raise UserError(f"{workdir} is in use by process {holder['pid']} on {holder['host']} "
                        f"(since {holder['since']}): wait for that run to finish, stop it "
                        f"(kill {holder['pid']}), or use another --workdir")
    try:
        yield
    finally:
        if handle is not None:
            handle.close()


def _lock(path: Path):
    """`(open handle, None)` once locked, or `(None, holder)` when another process holds it."""
    # Not through a link planted since the check (O_NOFOLLOW), and without truncating a file
    # that another run holds.
    handle = open(path, "a+", opener=no_follow)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            holder = json.loads(handle.read())
        except ValueError:  # the holder has not written itself in yet
            holder = {}
        handle.close()
        return None, {"pid": int(holder.get("pid", -1)), "host": holder.get("host", "?"),
                      "since": holder.get("since", "?")}
    # The lock is ours; what the file says of an earlier holder is stale, so it is replaced.
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
    handle.flush()
    return handle, None
