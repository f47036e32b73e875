"""Ctrl-C (SIGINT) and SIGTERM, how clusters preempt a job, stop a run cleanly.

The loop finishes the step in flight, saves a checkpoint and raises `jgan.errors.Interrupted`,
which the command line turns into one line and exit code 128 + signal (130, 143). A second Ctrl-C
while the checkpoint is written falls back to Python's default (KeyboardInterrupt).

Before the first step (data preparation, model build, compiling) there is nothing to save, and
the main thread may sit in one C call for minutes, where Python runs no handler. So until
`StopRequests.started`, a thread woken through `signal.set_wakeup_fd` (written by the C-level
handler at once) prints one line and ends the process with `os._exit(128 + signal)`: as abrupt
as `kill -9`, which every write of a run survives (docs/reliability.md).

In a multi-process job every process must stop after the same step, or the last checkpoint's
save would wait forever for the others. JAX's preemption sync (started by
`jax.distributed.initialize`, which catches SIGTERM itself) agrees on that step; SIGINT is
passed on to it as SIGTERM. A process cannot leave a job alone without stranding the others in
a collective, so a signal before the first step stops the job after its first step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Callable

import jax


class StopRequests:
    def __init__(self, before_start: Callable[[str], str] | None = None):
        self.signal: int | None = None
        # before_start(signal name) -> the line to print, or None once the first step runs
        self._before_start = before_start
        self._exiting = threading.Lock()
        self._calls = 0  # of `requested`, JAX's preemption counter

    def started(self) -> None:
        """From now on a signal stops the run after the step in flight."""
        with self._exiting:
            self._before_start = None

    def _exit_before_start(self, wakeup: int) -> None:
        """The wakeup thread: end the process on SIGINT or SIGTERM until `started`."""
        try:
            self._wait_before_start(wakeup)
        finally:
            os.close(wakeup)

    def _wait_before_start(self, wakeup: int) -> None:
        while True:
            try:
                received = os.read(wakeup, 1)
            except OSError:
                return
            if not received:  # the block ended and closed the pipe
                return
            if received[0] not in (signal.SIGINT, signal.SIGTERM):
                continue
            with self._exiting:
                if self._before_start is None:  # drained until the block ends: a write to
                    continue  # a closed pipe would print an error on every later signal
                signum = received[0]
                name = signal.Signals(signum).name
                try:
                    line = self._before_start(name)
                except Exception:  # whatever the tidying meets, the process still ends now
                    line = f"stopped by {name} before the first step"
                try:
                    sys.stdout.flush()
                    os.write(sys.stderr.fileno(), f"{line}\n".encode())
                finally:
                    os._exit(128 + signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signal or signal.SIGTERM).name

    def requested(self, step: int) -> bool:
        """Whether to stop after `step`; every process of a job gets the same answer."""
        if jax.process_count() == 1:
            return self.signal is not None
        from jax.experimental import multihost_utils

        # JAX's sync point is one past the largest count any process has passed, and is met
        # only by equality: the count must go up by one per call, from 1, whatever the step
        # numbers (a resumed run's, or the 2-D benchmark's chunks of steps). A notice before
        # the first call (while the data is prepared or the step compiled) sets it at 1.
        self._calls += 1
        if multihost_utils.reached_preemption_sync_point(self._calls):
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
def stop_requests(*, before_start: Callable[[str], str] | None = None):
    """Catch SIGINT and SIGTERM for the duration of the block (main thread only).

    `before_start(signal name)`, in a one-process run, is called on a signal that comes before
    `started()`: it may tidy up (from another thread than the main one) and returns the line
    printed before the process exits with 128 + the signal."""
    if threading.current_thread() is not threading.main_thread():
        yield StopRequests()
        return
    if jax.process_count() == 1:
        stop = StopRequests(before_start)
        handled = {signal.SIGINT: stop._on_signal, signal.SIGTERM: stop._on_signal}
    else:  # JAX's preemption sync agrees on the step, and must see every process get there
        stop = StopRequests()
        handled = {signal.SIGINT: stop._on_interrupt_in_a_job}
    previous = {signum: signal.signal(signum, handler) for signum, handler in handled.items()}
    wakeup = None
    if stop._before_start is not None:
        wakeup = os.pipe()
        os.set_blocking(wakeup[1], False)
        previous_wakeup = signal.set_wakeup_fd(wakeup[1], warn_on_full_buffer=False)
        threading.Thread(target=stop._exit_before_start, args=(wakeup[0],), daemon=True,
                         name="jgan-stop-before-start").start()
    try:
        yield stop
    finally:
        if wakeup is not None:
            signal.set_wakeup_fd(previous_wakeup)
            os.close(wakeup[1])  # the thread reads the end of the pipe and returns
        for signum, handler in previous.items():
            signal.signal(signum, handler)
