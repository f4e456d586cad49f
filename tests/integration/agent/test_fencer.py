"""The writer's watchdog on real processes: it stops what it guards once the lease deadline passes, and only
then, whether or not the process that set the deadline is still alive."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from regionctl.agent.fencer import write_deadline

pytestmark = pytest.mark.integration


def start_fencer(pid: int, deadline_file: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "regionctl.agent.fencer", "--pid", str(pid),
                             "--deadline-file", str(deadline_file)], stderr=subprocess.PIPE)


def test_the_guarded_process_lives_while_renewed_and_is_stopped_once_the_deadline_passes(tmp_path: Path) -> None:
    writer = subprocess.Popen(["sleep", "600"])  # SIGQUIT ends it, as it makes a postmaster shut down at once
    deadline = tmp_path / "orders.deadline"
    write_deadline(deadline, time.monotonic() + 1.0)
    fencer = start_fencer(writer.pid, deadline)
    try:
        for _ in range(4):  # renewed four times, 0.5 s apart, each for 1 s: never fenced
            time.sleep(0.5)
            assert writer.poll() is None
            write_deadline(deadline, time.monotonic() + 1.0)
        renewed_until = time.monotonic() + 1.0
        writer.wait(timeout=5)
        fenced_at = time.monotonic()
        assert renewed_until <= fenced_at < renewed_until + 0.5
        assert fencer.wait(timeout=5) == 0
        assert b"the lease deadline passed" in (fencer.stderr.read() if fencer.stderr else b"")
    finally:
        writer.kill()
        fencer.kill()


def test_a_fencer_outlives_the_agent_that_started_it_and_still_fences(tmp_path: Path) -> None:
    writer = subprocess.Popen(["sleep", "600"])
    deadline = tmp_path / "orders.deadline"
    script = (f"import subprocess, sys, time; from pathlib import Path; from regionctl.agent.fencer import "
              f"write_deadline; write_deadline(Path({str(deadline)!r}), time.monotonic() + 1.5); "
              f"p = subprocess.Popen([sys.executable, '-m', 'regionctl.agent.fencer', '--pid', '{writer.pid}', "
              f"'--deadline-file', {str(deadline)!r}]); print(p.pid, flush=True); time.sleep(600)")
    agent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        fencer_pid = int(agent.stdout.readline()) if agent.stdout else 0
        agent.kill()  # SIGKILL: no goodbye, no cleanup
        agent.wait(timeout=5)
        assert writer.poll() is None  # not before its deadline
        writer.wait(timeout=5)  # fenced by the orphaned fencer
        assert fencer_pid > 0
    finally:
        writer.kill()
        agent.kill()


def test_a_missing_or_damaged_deadline_fences_at_once(tmp_path: Path) -> None:
    writer = subprocess.Popen(["sleep", "600"])
    deadline = tmp_path / "orders.deadline"
    deadline.write_text("not a number")
    fencer = start_fencer(writer.pid, deadline)
    try:
        writer.wait(timeout=3)
        fencer.wait(timeout=3)
    finally:
        writer.kill()
        fencer.kill()
