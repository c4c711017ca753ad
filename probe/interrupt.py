"""SIGINT, SIGTERM and SIGHUP end a run the same way, whenever they arrive.

The first signal asks the run to stop: unfinished probes are cancelled and recorded as
``interrupted``, and the report, marked interrupted, is still written atomically; the exit code is
3 (unknown). A closed SSH session (SIGHUP) and ``systemctl stop`` (SIGTERM) thus leave a report,
exactly like Ctrl-C. A second signal means "now": temporary files are removed and the process
exits with 3 at once, without waiting for anything.

Outside the event loop a plain ``signal.signal`` handler records the request. While probes run,
the handlers are the loop's own (``loop.add_signal_handler``), which wake the loop through its
self-pipe even when the signal lands on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from probe.atomic import discard_temporaries

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_NOW = 3


class Interrupt:
    def __init__(self) -> None:
        self.count = 0
        self._listeners: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self.count > 0

    def install(self) -> None:
        """Take over the three signals for the whole process (the CLI calls this first)."""
        self.count = 0
        for sig in SIGNALS:
            signal.signal(sig, self._handler)

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self.fire(signum)

    def fire(self, signum: int) -> None:
        self.count += 1
        if self.count > 1:
            discard_temporaries()
            with contextlib.suppress(OSError):
                os.write(2, f"amlprobe: {signal.Signals(signum).name} again: exiting now\n".encode())
            os._exit(EXIT_NOW)
        for listener in list(self._listeners):
            listener()

    @contextlib.contextmanager
    def on_loop(self, loop: asyncio.AbstractEventLoop, listener: Callable[[], None]) -> Iterator[None]:
        """While inside, the loop handles the signals and ``listener`` runs on the first one."""
        previous: dict[signal.Signals, Any] = {}
        for sig in SIGNALS:
            try:
                previous[sig] = signal.getsignal(sig)
                loop.add_signal_handler(sig, self.fire, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                previous.pop(sig, None)
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)
            for restored, handler in previous.items():
                loop.remove_signal_handler(restored)
                # remove_signal_handler resets to the default; put back what was there before.
                signal.signal(restored, handler if handler is not None else signal.SIG_DFL)


INTERRUPT = Interrupt()
