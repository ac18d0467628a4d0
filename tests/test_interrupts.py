"""An interrupt is noted before Ray's own handler runs (`orchestrator/core/interrupts.py`)."""

from __future__ import annotations

import os
import signal

from orchestrator.core import interrupts


def test_the_flag_is_set_and_the_previous_handler_still_runs():
    calls: list[str] = []
    saved = {sig: signal.getsignal(sig) for sig in interrupts.SIGNALS}
    try:
        signal.signal(signal.SIGUSR1, lambda sig, frame: calls.append("ray"))
        interrupts.watch(lambda: calls.append("noted"))
        os.kill(os.getpid(), signal.SIGUSR1)
        assert calls == ["noted", "ray"]
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_default_dispositions_are_left_alone():
    saved = signal.getsignal(signal.SIGUSR1)
    try:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        interrupts.watch(lambda: None)
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGUSR1, saved)
