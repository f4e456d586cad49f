"""A data-directory copy (pg_basebackup, pg_rewind) never outlives the process that ran it, children included:
an orphan would go on writing into a directory that a resumed runbook step has already started copying into
again (pg_basebackup -X stream forks a WAL streamer, so the fake binaries here fork a child too)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from regionctl.errors import OperationTimeout
from regionctl.runtime.osuser import ensure_runas
from regionctl.runtime.postgres import PgBinaries, PgInstance
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


@pytest.fixture
def root() -> Iterator[Path]:
    """A directory with fake binaries that start a child, record both pids, and wait (as a copy would)."""
    path = scratch_root("regionctl-copies-")
    path.chmod(0o777)  # the fakes run as the PostgreSQL user and write their pids here
    for binary in ("pg_basebackup", "pg_rewind", "pg_ctl"):
        fake = path / binary
        fake.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {path}/{binary}.child\n"
                        f"echo $$ > {path}/{binary}.pid\nwait\n")
        fake.chmod(0o755)
    yield path
    for pid_file in path.glob("*.pid") if path.exists() else ():
        for pid in pids(path, pid_file.stem):
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def pids(root: Path, binary: str) -> list[int]:
    files = [root / f"{binary}.pid", root / f"{binary}.child"]
    return [int(f.read_text()) for f in files if f.exists() and f.read_text().strip()]


def started(root: Path, binary: str, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pids(root, binary)
        if len(found) == 2:
            return found
        time.sleep(0.05)
    raise AssertionError(f"the fake {binary} never started")


def gone(pid_list: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pid_list) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(pid_alive(p) for p in pid_list)


@pytest.mark.parametrize(("binary", "dies"), [("pg_basebackup", True), ("pg_rewind", True), ("pg_ctl", False)])
def test_a_killed_caller_takes_its_data_copy_and_the_copys_children_with_it(root: Path, binary: str,
                                                                             dies: bool) -> None:
    caller = subprocess.Popen([sys.executable, "-c", CALLER, str(root), binary])
    try:
        copy = started(root, binary)
        caller.kill()
        caller.wait(timeout=10)
        # pg_ctl is left alone: the postmaster it starts must outlive the command that started it.
        assert gone(copy) is dies, f"{binary} {'outlived' if dies else 'died with'} its caller: {copy}"
    finally:
        caller.kill()


def test_a_copy_that_takes_too_long_is_stopped_with_its_children(root: Path) -> None:
    instance = PgInstance(name="copy-test", datadir=root / "data", host="127.0.0.1", port=1, log_file=root / "log",
                          bins=PgBinaries(root), runas=ensure_runas("regionctl-pg"))
    with pytest.raises(OperationTimeout, match="pg_basebackup did not finish within 1 s"):
        instance.run([instance.bins("pg_basebackup")], timeout=1)
    assert gone(pids(root, "pg_basebackup"))
