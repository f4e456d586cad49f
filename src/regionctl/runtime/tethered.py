"""Run a command as a process group that never outlives its caller, children included.

``pg_basebackup -X stream`` forks a WAL streamer, and ``pg_rewind`` starts ``postgres --single``. If the caller
(a runbook engine, a CLI) is SIGKILLed, those would go on writing into a data directory that the resumed step
has already started copying into again, or keep a replication slot busy. A parent-death signal alone is per
process and not inherited, so the command runs under a small ``sh`` that ``setpriv --pdeathsig`` arms: when the
caller dies, that shell gets SIGTERM and SIGKILLs its whole process group. A timeout kills the group as well.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

# "$@" runs in the background so the shell is free to run its trap while it waits.
_TETHER = 'trap "kill -KILL 0" TERM; "$@" & wait $!'


@lru_cache(maxsize=1)
def _setpriv() -> str | None:
    """util-linux's setpriv when it knows ``--pdeathsig`` (2.33 and later), else None (said once in the log)."""
    path = shutil.which("setpriv")
    if path is not None:
        usage = subprocess.run([path, "--help"], capture_output=True, text=True, check=False).stdout
        if "--pdeathsig" in usage:
            return path
    log.warning("setpriv --pdeathsig is not available: a data copy may outlive a killed caller")
    return None


def tethered_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped so that its process group dies with the caller (unchanged when setpriv cannot)."""
    setpriv = _setpriv()
    if setpriv is None:
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "--", "/bin/sh", "-c", _TETHER, "sh", *argv]


def run_tethered(argv: Sequence[str], timeout: float, **popen: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, capture_output=True, text=True)`` in a process group of its own that dies with
    the caller; on timeout the whole group is killed, then ``TimeoutExpired`` is raised."""
    command = tethered_argv(argv)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, process_group=0,
                          **popen) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise subprocess.TimeoutExpired(list(argv), timeout) from None
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
