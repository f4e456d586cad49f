"""A data-directory copy (pg_basebackup, pg_rewind) never outlives the process that ran it: an orphan would go on
writing into a directory that a resumed runbook step has already started copying into again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regionctl.runtime.process import pid_alive
from tests.support.deploy import scratch_root

pytestmark = pytest.mark.integration

CALLER = """
import sys
from pathlib import Path
from regionctl.runtime.osuser import ensure_runas
from regionctl.runtime.postgres import PgBinaries, PgInstance

root = Path(sys.argv[1])
instance = PgInstance(name="copy-test", datadir=root / "data", host="127.0.0.1", port=1, log_file=root / "log",
                      bins=PgBinaries(root), runas=ensure_runas("regionctl-pg"))
instance.run([instance.bins(sys.argv[2])], timeout=120)
"""


def started_pid(pid_file: Path, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text().strip():
            return int(pid_file.read_text())
        time.sleep(0.05)
    raise AssertionError("the fake copy never started")


@pytest.mark.parametrize(("binary", "dies"), [("pg_basebackup", True), ("pg_rewind", True), ("pg_ctl", False)])
def test_a_killed_caller_takes_its_data_copy_with_it(binary: str, dies: bool) -> None:
    root = scratch_root("regionctl-copies-")
    root.chmod(0o777)  # the fake binary runs as the PostgreSQL user and writes its pid here
    fake = root / binary
    fake.write_text(f"#!/bin/sh\necho $$ > {root}/pid\nexec sleep 60\n")
    fake.chmod(0o755)
    caller = subprocess.Popen([sys.executable, "-c", CALLER, str(root), binary])
    pid = None
    try:
        pid = started_pid(root / "pid")
        caller.kill()
        caller.wait(timeout=10)
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pid_alive(pid) is not dies, f"{binary} {'outlived' if dies else 'died with'} its caller"
    finally:
        caller.kill()
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
