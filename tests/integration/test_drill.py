"""`regionctl drill run` on the shared deployment, as an operator runs it: us-east-1 killed as a whole (its agent,
databases and services), RegionFailover, the region started again, Failback. Every acknowledged write (shop
orders and the drill's own inserts, updates and deletes in both databases) is on the writer or in a report, and
the verdict says so; then an acknowledged order is removed from the writer behind the drill's back and
`drill check` names it.

Meanwhile the global entry's routing is sampled every 100 ms: the surviving region's health must not fail with
the region that died (its services run throughout, only degraded until the writers moved), so at no moment is
there no region to route to; and shoppers see errors only for purchases started before the writers moved.

Leaves the deployment as the other tests expect it: writers in us-east-1, both routing controls On.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from regionctl.observe.launch import console_url
from regionctl.runbooks.wiring import entry_url
from tests.support.deploy import RunningDeployment
from tests.support.drills import REGIONCTL, leave_healthy

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"


def drill_cli(deployment: RunningDeployment, *args: str) -> tuple[int, dict[str, object]]:
    result = subprocess.run([REGIONCTL, "drill", *args, "--format", "json"], env=deployment.cli_env,
                            capture_output=True, text=True, timeout=900)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


class EntrySampler:
    """The entry's routing (its healthy regions) every 100 ms, on a thread."""

    def __init__(self, deployment: RunningDeployment) -> None:
        self.url = f"{entry_url(deployment.settings)}/_entry/status"
        self.samples: list[tuple[float, list[str] | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self._stop.is_set():
                try:
                    self.samples.append((time.time(), list(client.get(self.url).json()["healthy"])))
                except httpx.HTTPError:
                    self.samples.append((time.time(), None))
                self._stop.wait(0.1)

    def __enter__(self) -> EntrySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def drilled(deployment: RunningDeployment) -> Iterator[dict[str, object]]:
    try:
        with EntrySampler(deployment) as sampler:
            code, brief = drill_cli(deployment, "run", "--fault", "kill-region", "--duration", "8",
                                    "--load-rate", "3", "--seed", "11")
        _, record = drill_cli(deployment, "show", str(brief["id"]))
        record["exit_code"] = code
        record["entry_samples"] = sampler.samples
        yield record
    finally:
        leave_healthy(deployment, EAST)


def test_a_region_kill_drill_accounts_for_every_acknowledged_write(drilled: dict[str, Any]) -> None:
    record = drilled
    check = record["check"]
    assert isinstance(check, dict)
    counts = check["counts"]
    assert record["verdict"] == "PASS" and record["exit_code"] == 0, record["reason"]
    assert counts["unreported"] == 0 and counts["reported_present"] == 0
    assert counts["acknowledged"] > 20 and counts["present"] > 0
    figures = record["figures"]
    assert isinstance(figures, dict) and figures["failback_lost"] == 0
    runbook = record["runbook"]
    assert isinstance(runbook, dict) and runbook["status"] == "succeeded"
    assert figures["recovery_s"] is not None and figures["recovery_from_fault_s"] >= figures["recovery_s"]


def test_the_surviving_region_stays_routable_and_shoppers_fail_only_until_the_writers_moved(
        deployment: RunningDeployment, drilled: dict[str, Any]) -> None:
    timeline = drilled["timeline"]
    samples = [(at, healthy) for at, healthy in drilled["entry_samples"]
               if timeline["fault_at"] <= at <= timeline["failback_ended"]]
    assert len(samples) > 50
    unanswered = [at for at, healthy in samples if healthy is None]
    assert not unanswered, f"the entry did not answer its status at {len(unanswered)} samples"
    empty = [round(at - timeline["fault_at"], 1) for at, healthy in samples if healthy == []]
    assert not empty, f"no region to route to at +{empty} s after the fault"
    assert any(healthy == [WEST] for _, healthy in samples)  # the dead region was taken out
    moved = next(s["ended_at"] for s in timeline["steps"]
                 if s["what"] == "runbook" and s["step"] == "FailoverDatabases")
    log = deployment.topo.paths.state / "drills" / str(drilled["id"]) / "errors.jsonl"
    errors = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    late = [e for e in errors if e["started"] > moved]
    assert not late, f"{len(late)} purchases started after the writers moved failed: {late[:3]}"


def test_the_console_lists_the_drill_and_serves_its_page(deployment: RunningDeployment,
                                                        drilled: dict[str, object]) -> None:
    url = console_url(deployment.topo.ports)
    assert url is not None
    overview = httpx.get(f"{url}/api/overview", timeout=10).json()
    listed = {d["id"]: d for d in overview["drills"]["data"]}
    assert listed[str(drilled["id"])]["verdict"] == "PASS"
    page = httpx.get(f"{url}/drills/{drilled['id']}", timeout=10)
    assert page.status_code == 200 and "<svg" in page.text and f"{drilled['id']}: <span" in page.text
    assert httpx.get(f"{url}/drills/drill-20000101-000000-0000", timeout=10).status_code == 404
    assert httpx.get(f"{url}/drills/..%2Fsecrets", timeout=10).status_code in (400, 404)


TAKE_FROM_SALES = """
update product_sales s set orders = s.orders - 1, quantity = s.quantity - i.quantity,
       revenue = s.revenue - i.total_cost
from customer_order_item i where i.order_id = %s and i.product_id = s.product_id
"""

def test_an_acknowledged_order_taken_from_the_writer_makes_the_check_fail_naming_it(
        deployment: RunningDeployment, drilled: dict[str, object]) -> None:
    drill_id = str(drilled["id"])
    acks = (deployment.topo.paths.state / "drills" / drill_id / "orders.jsonl").read_text().splitlines()
    writer = deployment.gdbs.cluster("orders").member(deployment.gdbs.state("orders").writer)
    held = {str(r["id"]) for r in writer.query("select id from customer_order", dbname="orders")}
    victim = next(json.loads(line)["order_id"] for line in acks if json.loads(line)["order_id"] in held)
    writer.query(TAKE_FROM_SALES, (victim,), dbname="orders")  # the shop stays consistent for later tests
    writer.query("delete from customer_order_item where order_id = %s", (victim,), dbname="orders")
    writer.query("delete from order_outbox where order_id = %s", (victim,), dbname="orders")
    writer.query("delete from customer_order where id = %s", (victim,), dbname="orders")
    code, verdict = drill_cli(deployment, "check", drill_id)
    assert code == 1 and verdict["verdict"] == "FAIL"
    assert verdict["unreported"] == [f"order {victim} (acknowledged via {EAST})"] or \
        verdict["unreported"] == [f"order {victim} (acknowledged via {WEST})"]
    assert victim in str(verdict["reason"])
