"""Fault injection for the reliability tests: `JGAN_KILL_AT=POINT[@STEP]` kills the run there.

At the named point (and step, when given) the process sends SIGKILL to its own PID, as a power
cut or an out-of-memory kill would end it: no handler runs, no file is closed. The tests resume the
run afterwards and compare it bit for bit with one that was never interrupted. Unset, each point
costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "JGAN_KILL_AT"


def fault_point(name: str, step: int | None = None) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, at = spec.partition("@")
    if point == name and (not at or step is None or int(at) == step):
        os.kill(os.getpid(), signal.SIGKILL)
