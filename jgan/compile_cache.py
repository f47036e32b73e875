"""Warm starts: JAX's persistent compilation cache, on by default in `$JGAN_CACHE_DIR/xla`.

Every run of an experiment compiles its train step, sampler and evaluator again (3.2 s for the
DCGAN step on 2 CPU cores). With the cache, a later run of the same programs loads the compiled
executables from disk instead. A cached executable is the one XLA compiled, so results are
bit-identical with and without it (tests/test_compile_cache.py).

The entry points (`jgan.cli.run_experiment`, the mode-collapse and DANN experiments,
`jgan.tools.*`) call `enable` before anything compiles. It is off with `--no-compile-cache` or
`JGAN_COMPILE_CACHE=0`; a cache directory the user chose (`JAX_COMPILATION_CACHE_DIR` or
`jax.config`) is used as it is, with the user's own settings.

JAX runs the executables it finds in the cache, so jgan's own directory is used only when no one
else can have put them there: owned by the user, and writable by no one else. Otherwise the cache
is turned off with a warning rather than the run refused: the cache only saves compile time, and
results are the same without it.

Runs started together share the directory. JAX writes an entry in place and, without a size limit,
unlocked, so a second run could read a half-written one (a warning, then a compile): jgan's
directory has a limit (`MAX_BYTES`, least recently used entries go first), under which every read
and write holds the directory's file lock.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import jax

from jgan.data.sources import cache_dir

SWITCH_ENV = "JGAN_COMPILE_CACHE"
# JAX writes only programs that took this long to compile. Its default, 1 s, leaves out the
# quick start's sampler (0.6 s on the 2 loaded cores here); below 0.1 s are the many small eager
# ops (casts, broadcasts), each a file for next to no time saved.
MIN_COMPILE_SECONDS = 0.1
# Far above the few MiB an experiment's programs take; a limit at all is what buys the lock.
MAX_BYTES = 2 * 2**30
# JAX's names for an entry and for the time it was last used (jax._src.lru_cache).
ENTRY_SUFFIX, USED_SUFFIX = "-cache", "-atime"


def enable(on: bool = True, *, log=print) -> Path | None:
    """Turn the persistent compilation cache on (or off when `on` is False or the environment
    sets `JGAN_COMPILE_CACHE=0`) and return the directory in use, or None when it is off.

    Call before the first compilation: a program compiled earlier is neither read nor written.
    """
    if not on or os.environ.get(SWITCH_ENV, "1") == "0":
        # Off means off, even for a directory set outside jgan.
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    if not jax.config.jax_enable_compilation_cache:
        return None
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    directory = cache_dir() / "xla"
    # The cache is trusted code (JAX's warning): only its owner may write to it.
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    others = untrusted(directory)
    if others:
        log(f"warning: {directory} can be written by {others}, and JAX runs what it finds "
            f"there: compiling without the cache (chmod go-w {directory}, or remove it, to use "
            "it again)")
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    add_use_times(directory)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return directory


def add_use_times(directory: Path) -> None:
    """Give each entry that has none a last-use time of now. Entries written with no size limit
    (jgan before the limit) have none, and with a limit JAX reads them all before each write."""
    now = time.time_ns().to_bytes(8, "little")
    for entry in directory.glob(f"*{ENTRY_SUFFIX}"):
        used = entry.with_name(entry.name.removesuffix(ENTRY_SUFFIX) + USED_SUFFIX)
        if not used.exists():
            used.write_bytes(now)


def untrusted(directory: Path) -> str:
    """Who other than this user could write into `directory` ("" when no one): its owner when
    that is someone else, or its group and others when its mode lets them."""
    status = directory.stat()
    if status.st_uid != os.getuid():
        return f"its owner (uid {status.st_uid})"
    writers = [name for name, bit in (("its group", stat.S_IWGRP), ("others", stat.S_IWOTH))
               if status.st_mode & bit]
    return " and ".join(writers)
