"""`regionctl up` / `down` as a newcomer runs them: a real foreground process, then the data survives a restart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.deploy import scratch_root
from tests.support.ports import deployment_base_port

pytestmark = pytest.mark.integration
REGIONCTL = str(Path(sys.executable).with_name("regionctl"))


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([REGIONCTL, *args], env=env, capture_output=True, text=True, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"regionctl {' '.join(args)} -> {result.returncode}: {result.stderr}")
    return result


def cli_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(cli(env, *args, "--format", "json").stdout)


def start_up(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([REGIONCTL, "up"], env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_up(env: dict[str, str], proc: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"regionctl up exited early: {log.read_text()[-2000:]}"
        status = cli_json(env, "status")
        if status["up_pid"] == proc.pid and status["components"]:
            dbs = cli(env, "db", "status", "--format", "json", check=False)  # fails until the databases exist
            if dbs.returncode == 0 and all(db["healthy"] for db in json.loads(dbs.stdout)):
                return cli_json(env, "status")
        time.sleep(3)  # each poll is two CLI processes: polling faster only takes CPU from the `up` it waits for
    raise AssertionError("the deployment did not come up healthy")


def connect_writer(env: dict[str, str], root: Path, timeout: float = 20.0) -> psycopg.Connection[Any]:
    """The orders writer as `db status` names it. The data is what this test checks: a writer that is briefly
    unreachable just after `up` called the deployment healthy is retried (once seen in CI, not reproduced
    here), and if it stays so the failure carries the logs that say why."""
    deadline = time.monotonic() + timeout
    while True:
        dbs = {db["name"]: db for db in cli_json(env, "db", "status")}
        writer = next(m for m in dbs["orders"]["members"] if m["role"] == "writer")
        host, port = writer["address"].split(":")
        try:
            return psycopg.connect(host=host, port=int(port), user="postgres", dbname="orders", autocommit=True,
                                   passfile=str(root / "data" / "pgpass" / "superuser"))
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                logs = sorted((root / "data").rglob("*.log"))
                tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-1500:]}" for p in logs
                                  if p.name in ("link.log", "agent.log") or "orders" in p.name)
                raise AssertionError(f"the orders writer at {host}:{port} stayed unreachable: {exc}\n{tails}") \
                    from None
            time.sleep(0.5)


def test_up_status_link_down_and_a_second_up_reusing_the_data() -> None:
    root = scratch_root("regionctl-cli-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGIONCTL_")}
    env.update(REGIONCTL_DATA_DIR=str(root / "data"), REGIONCTL_BASE_PORT=str(deployment_base_port()),
               REGIONCTL_WORKLOAD__LAUNCHER="")  # the platform alone: the shared deployment runs the whole shop
    env.pop("ENV", None)
    try:
        log = root / "up.log"
        up = start_up(env, log)
        status = wait_up(env, up, log)
        components = {(c["region"], c["component"]): c for c in status["components"]}
        assert components[("us-east-1", "postgres orders")]["state"] == "writer"
        assert components[("us-west-2", "postgres orders")]["state"] == "standby"
        assert components[("us-east-1", "postgres orders")]["address"].startswith("127.0.1.1:")
        assert components[("global", "link")]["state"] == "up"

        again = cli(env, "up", check=False)
        assert again.returncode != 0 and "already up" in again.stderr

        dbs = {db["name"]: db for db in cli_json(env, "db", "status")}
        writer = next(m for m in dbs["orders"]["members"] if m["role"] == "writer")
        host, port = writer["address"].split(":")
        passfile = str(root / "data" / "pgpass" / "superuser")  # SCRAM: `up` wrote the password there
        with psycopg.connect(host=host, port=int(port), user="postgres", dbname="orders", autocommit=True,
                             passfile=passfile) as conn:
            conn.execute("create table kept (id int primary key)")
            conn.execute("insert into kept values (42)")

        link = cli_json(env, "link", "partition", "--direction", "both")
        between_regions = [d for d in link["directions"] if "global" not in (d["src"], d["dst"])]
        assert len(between_regions) == 2 and all(d["partitioned"] for d in between_regions)
        assert not any(d["partitioned"] for d in link["directions"] if d not in between_regions)  # control path
        link = cli_json(env, "link", "heal")
        assert not any(d["partitioned"] for d in link["directions"])

        bad = cli(env, "db", "switchover", "orders", "--to", "us-east-1", check=False)
        assert bad.returncode == 3 and "already in us-east-1" in bad.stderr

        down = cli_json(env, "down")
        assert down["stopped_up_process"] == up.pid and not down["purged"]
        assert up.wait(timeout=60) == 0
        assert cli_json(env, "status")["up_pid"] is None

        up = start_up(env, log)
        wait_up(env, up, log)
        with connect_writer(env, root) as conn:
            assert conn.execute("select id from kept").fetchall() == [(42,)]

        purged = cli_json(env, "down", "--purge", "--yes")
        assert purged["purged"] and not (root / "data").exists()
    finally:
        subprocess.run([REGIONCTL, "down"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
