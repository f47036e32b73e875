"""Ctrl-C (SIGINT) and SIGTERM, how clusters preempt a job, stop a run cleanly.

The loop finishes the step in flight, saves a checkpoint and raises `jgan.errors.Interrupted`,
which the command line turns into one line and exit code 128 + signal (130, 143). A second Ctrl-C
while the checkpoint is written falls back to Python's default (KeyboardInterrupt).

In a multi-process job every process must stop after the same step, or the last checkpoint's
save would wait forever for the others. JAX's preemption sync (started by
`jax.distributed.initialize`, which catches SIGTERM itself) agrees on that step; SIGINT is
passed on to it as SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import jax


class StopRequests:
    def __init__(self):
        self.signal: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal or signal.SIGTERM).name

    def requested(self, step: int) -> bool:
        """Whether to stop after `step`; every process of a job gets the same answer."""
        if jax.process_count() == 1:
            return self.signal is not None
        from jax.experimental import multihost_utils

        if multihost_utils.reached_preemption_sync_point(step):
            self.signal = self.signal or signal.SIGTERM
            return True
        return False

    def _on_signal(self, signum, frame):
        self.signal = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def _on_interrupt_in_a_job(self, signum, frame):
        self.signal = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def stop_requests():
    """Catch SIGINT and SIGTERM for the duration of the block (main thread only)."""
    stop = StopRequests()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    if jax.process_count() == 1:
        handled = {signal.SIGINT: stop._on_signal, signal.SIGTERM: stop._on_signal}
    else:
        handled = {signal.SIGINT: stop._on_interrupt_in_a_job}
    previous = {signum: signal.signal(signum, handler) for signum, handler in handled.items()}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
