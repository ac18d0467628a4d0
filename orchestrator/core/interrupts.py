"""Knowing that a search was interrupted (Ctrl+C, SIGUSR1), not guessing it afterwards.

Ray Tune answers SIGINT by ending its loop, snapshotting the experiment and then stopping the
running trials, which it marks TERMINATED like trials that finished. Seen from the results
alone, a trial cut short then looks completed and an interrupted search looks finished. Ray's
handler is installed before the callbacks are set up; `watch` wraps it so that the flag is set
first and Ray's handler still runs.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGUSR1") if hasattr(signal, name))


def watch(on_interrupt: Callable[[], None]) -> None:
    """Call `on_interrupt` when one of SIGNALS arrives, then the handler in place now. Only the
    main thread can set handlers (Ray sets none elsewhere either)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous):  # SIG_DFL / SIG_IGN: nothing of Ray's to keep
            continue
        signal.signal(sig, _chained(on_interrupt, previous))


def _chained(on_interrupt: Callable[[], None], previous: Callable[..., Any]) -> Any:
    def handler(sig: int, frame: Any) -> Any:
        on_interrupt()
        return previous(sig, frame)

    return handler
