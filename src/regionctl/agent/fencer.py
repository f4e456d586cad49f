"""The writer's watchdog: stop the postmaster once its lease deadline has passed, whether or not the agent
that set the deadline is still alive (Patroni's watchdog, in software).

The agent writes a deadline (CLOCK_MONOTONIC seconds, shared by every process of the host) to a file after
each lease renewal; this separate process reads it every 50 ms and, when it passes, sends the postmaster
SIGQUIT (immediate shutdown: no commit is acknowledged after it). It is not tethered to the agent on purpose:
a SIGKILLed agent leaves it running, so the writer is still fenced before its lease can expire anywhere else,
and a restarted agent keeps renewing the same file. It exits when the postmaster it guards is gone.

    python -m regionctl.agent.fencer --pid PID --deadline-file FILE
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from regionctl.runtime.process import pid_alive

POLL_S = 0.05


def write_deadline(path: Path, deadline: float) -> None:
    """Atomically: the fencer never reads half a number."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{deadline:.3f}\n")
    tmp.replace(path)


def read_deadline(path: Path) -> float:
    """The deadline, or 0 (fence now) when the file is missing or damaged."""
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return 0.0


def guard(pid: int, deadline_file: Path, clock: Callable[[], float] = time.monotonic) -> str:
    """Watch until the postmaster ``pid`` exits or its deadline passes; return what happened."""
    while pid_alive(pid):
        if clock() > read_deadline(deadline_file):
            try:
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                return "the writer had already stopped"
            while pid_alive(pid):
                time.sleep(0.005)
            return "fenced: the lease deadline passed without a renewal; immediate shutdown"
        time.sleep(POLL_S)
    return "the writer stopped on its own"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m regionctl.agent.fencer", description=__doc__)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--deadline-file", type=Path, required=True)
    args = parser.parse_args()
    said = guard(args.pid, args.deadline_file)
    print(f"fencer of {args.pid}: {said}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
