"""Ctrl-C and SIGTERM: stop after the current step, so the checkpoint then written is a
consistent step boundary."""

from __future__ import annotations

import contextlib
import signal


class Interrupted(Exception):
    """Training stopped by Ctrl-C or SIGTERM after saving a checkpoint."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class StopRequest:
    """Ctrl-C or SIGTERM ask the loop to stop after the current step; a second signal stops at once."""

    def __init__(self):
        self.signal: signal.Signals | None = None

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum)

    @contextlib.contextmanager
    def installed(self):
        try:
            old = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: leave signals alone
            old = {}
        try:
            yield self
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)
