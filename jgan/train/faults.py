"""Fault injection for the reliability tests: `JGAN_KILL_AT=POINT[@STEP]` kills the run there.

At the named point (and step, when given) the process sends SIGKILL to its own PID, as a power
cut or an out-of-memory kill would end it: no handler runs, no file is closed. The tests resume the
run afterwards and compare it bit for bit with one that was never interrupted.

`JGAN_PAUSE_AT=POINT[@STEP]` instead prints `paused at POINT` and keeps the main thread busy
there for an hour, as a long compile or data preparation does, for tests that signal the run
then. Unset, each point costs two dictionary lookups.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "JGAN_KILL_AT"
PAUSE_ENV = "JGAN_PAUSE_AT"


def fault_point(name: str, step: int | None = None) -> None:
    if _at(os.environ.get(ENV), name, step):
        os.kill(os.getpid(), signal.SIGKILL)
    if _at(os.environ.get(PAUSE_ENV), name, step):
        print(f"paused at {name}", flush=True)
        time.sleep(3600)


def _at(spec: str | None, name: str, step: int | None) -> bool:
    if not spec:
        return False
    point, _, at = spec.partition("@")
    return point == name and (not at or step is None or int(at) == step)
