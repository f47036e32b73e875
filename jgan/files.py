"""Writing into folders that jgan does not trust: run directories, output folders, the caches.

A run directory may come from someone else (docs/reliability.md, "Threat model"), so nothing jgan
writes there may follow a link planted in it: a new file is made with `O_CREAT | O_EXCL |
O_NOFOLLOW` under a random name beside its target, then renamed over the target (a rename
replaces a link, it never writes through one), and files opened in place (the run's lock,
history.csv's appends) are opened with `O_NOFOLLOW`. The rename also makes every write atomic:
a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from pathlib import Path

from jgan.errors import UserError

TEMPORARY_SUFFIX = ".tmp"
# atomic_write's names for its temporaries: .NAME.RANDOM.tmp
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}" + re.escape(TEMPORARY_SUFFIX))


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", **open_args):
    """An open file, on a new hidden file beside `path` (`.NAME.RANDOM.tmp`, so that no glob of
    the folder's files picks it up), renamed over `path` when the block ends without error and
    removed when it does not. `mode` and `open_args` as for `open` ("w", "wb", newline=...)."""
    path = Path(path)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
        try:
            # 0o666 less the umask, as `open` would make it (mkstemp's 0o600 would hide a run's
            # files from the people it is shared with).
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:  # a name taken by chance, or by a planted link: draw another
            continue
    try:
        with os.fdopen(handle, mode, **open_args) as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def remove_leftover_temporaries(folder: Path, *, older_than_s: float = 60.0) -> list[str]:
    """Remove the hidden files that `atomic_write`s killed mid-write (`kill -9`, a power cut)
    left in `folder`, and return their names. For a folder whose writer holds its lock: a file
    younger than `older_than_s` may still be another tool's write in progress, and is kept."""
    removed, now = [], time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:  # not made yet
        return removed
    for entry in entries:
        if not _TEMPORARY.fullmatch(entry.name):
            continue
        with contextlib.suppress(OSError):  # gone meanwhile; unlink never follows a link
            if now - entry.stat(follow_symlinks=False).st_mtime >= older_than_s:
                os.unlink(entry.path)
                removed.append(entry.name)
    return sorted(removed)


def write_text(path, text: str) -> None:
    """`path` holds `text`, written atomically and without following links."""
    with atomic_write(path, "w") as file:
        file.write(text)


def no_follow(path, flags: int) -> int:
    """An `opener` for `open` that refuses a symbolic link (OSError ELOOP) instead of following
    it: for files opened in place, such as an append."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)


def check_file_name(value: str, *, field: str, example: str) -> None:
    """A setting that becomes part of a file name (a split, a dataset) must name no other
    folder: no separator, not `.` or `..`."""
    if not value or value in (".", "..") or any(c in value for c in ("/", "\\", "\0")):
        raise UserError(f"{field}={value!r} is not a plain name (it becomes part of a file "
                        f"name, so it may hold no '/' and may not be '.' or '..'): use a name "
                        f"such as {example}, e.g. --set {field}={example}")


def make_cache_folder(folder: Path) -> Path:
    """`folder`, under `jgan.data.sources.cache_dir()`, made and writable; else one line that
    says how to move the cache (a home on a read-only disk, a JGAN_CACHE_DIR under a file)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied", str(folder))
    except OSError as error:
        raise UserError(f"the cache folder {folder} cannot be made or written ({error.strerror}"
                        f": {error.filename}): set JGAN_CACHE_DIR to a folder you can write, "
                        "e.g. JGAN_CACHE_DIR=/tmp/jgan-cache") from None
    return folder
