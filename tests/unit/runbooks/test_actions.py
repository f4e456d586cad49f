"""Actions check the world before acting; generic actions against a real local HTTP server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from regionctl.runbooks import journal as J
from regionctl.runbooks.actions.base import ActionContext, ActionError
from regionctl.runbooks.actions.generic import Sleep, SleepInputs
from regionctl.runbooks.actions.platform import DbRebuild, MemberInputs, plan_preserve, plan_promotion, plan_rebuild
from regionctl.runbooks.fakes import FakeDatabases, FakeRouting, fake_ports
from regionctl.runbooks.ports import DatabaseStatus, MemberStatus
from tests.unit.runbooks.harness import REGIONS, Harness

EAST, WEST = REGIONS


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []
    unhealthy_checks = 0  # answer 503 to this many health checks first (counted, not timed: machines are noisy)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        _Handler.seen.append({"method": self.command, "path": self.path, "body": body,
                              "key": self.headers.get("Idempotency-Key")})
        if self.path == "/health":
            ok = _Handler.unhealthy_checks <= 0
            _Handler.unhealthy_checks -= 1
            self._send(200 if ok else 503, {"ok": ok})
        elif self.path == "/teapot":
            self._send(418, {"error": "short and stout"})
        else:
            self._send(200, {"echo": json.loads(body) if body else None, "path": self.path})

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *_args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_request_and_wait_until_http(tmp_path: Path, web: str) -> None:
    h = Harness(tmp_path)
    h.write("Web", f"""
        description: talks HTTP
        steps:
          - name: WaitHealthy
            action: wait.until
            inputs: {{kind: http, url: "{web}/health", interval_seconds: 0.05, consecutive: 2}}
            outputs: {{checks: checks}}
          - name: Post
            action: http.request
            inputs: {{url: "{web}/orders", method: POST, json: {{item: 7}}}}
            outputs: {{echo: json.echo.item, status: status}}
          - name: Teapot
            action: http.request
            inputs: {{url: "{web}/teapot"}}
            onFailure: Continue
          - name: Expected
            action: http.request
            inputs: {{url: "{web}/teapot", expect_status: [418]}}
            outputs: {{said: json.error}}
    """)
    _Handler.seen.clear()
    _Handler.unhealthy_checks = 2
    ex = h.run("Web")
    assert ex.status == J.SUCCEEDED, ex.error
    journal = h.journal()
    runs = {r.step: r for r in journal.runs(ex.id)}
    assert runs["WaitHealthy"].outputs["checks"] == 4  # two 503s, then two consecutive 200s
    assert runs["Post"].outputs == {"echo": 7, "status": 200}
    assert runs["Teapot"].status == J.FAILED and "answered 418: " in (runs["Teapot"].error or "")
    assert runs["Expected"].outputs == {"said": "short and stout"}
    post = next(s for s in _Handler.seen if s["method"] == "POST")
    assert post["key"] == f"{ex.id}/{runs['Post'].seq}"  # a re-run after a crash sends the same key


def test_python_steps_call_registered_functions(tmp_path: Path) -> None:
    calls: list[Any] = []

    def add(a: int, b: int, idempotency_key: str) -> dict[str, Any]:
        calls.append(idempotency_key)
        return {"sum": a + b}

    async def shout(text: str) -> str:
        return text.upper()

    ports = fake_ports(REGIONS)
    ports = type(ports)(ports.databases, ports.routing, ports.reconciler, ports.probes,
                        {"add": add, "shout": shout})
    h = Harness(tmp_path, ports=ports)
    h.write("Py", """
        description: lambda steps
        steps:
          - name: Add
            action: python
            inputs: {function: add, args: {a: 2, b: 3}}
            outputs: {sum: result.sum}
          - name: Shout
            action: python
            inputs: {function: shout, args: {text: "sum is {{ steps.Add.outputs.sum }}"}}
            outputs: {said: result}
          - name: Missing
            action: python
            inputs: {function: nothing}
            maxAttempts: 3
    """)
    ex = h.run("Py")
    assert ex.status == J.FAILED and "no function 'nothing' is registered (known: add, shout)" in (ex.error or "")
    runs = {r.step: r for r in h.journal().runs(ex.id)}
    assert runs["Shout"].outputs == {"said": "SUM IS 5"}
    assert runs["Missing"].attempt == 1  # not retried: it cannot get better
    assert len(calls) == 1


def test_sleep_resumed_after_a_crash_only_sleeps_what_is_left() -> None:
    ctx = ActionContext(execution_id="e", runbook="r", step="s", seq=1, attempt=1, ports=fake_ports(REGIONS),
                        regions=REGIONS, services=None, started_at=time.time() - 9.95)  # type: ignore[arg-type]
    began = time.monotonic()
    asyncio.run(Sleep().run(SleepInputs(seconds=10), ctx))
    assert time.monotonic() - began < 1.0


def _status(writer: str | None, east: MemberStatus, west: MemberStatus) -> DatabaseStatus:
    return DatabaseStatus("orders", writer, {EAST: east, WEST: west})


def test_promotion_is_planned_only_when_the_target_is_not_the_writer() -> None:
    status = _status(EAST, MemberStatus(EAST, "writer", 1), MemberStatus(WEST, "standby", 1, True, 0))
    assert plan_promotion(status, WEST, "failover").act
    done = plan_promotion(_status(WEST, MemberStatus(EAST, "diverged", 1), MemberStatus(WEST, "writer", 2)), WEST,
                          "failover")
    assert not done.act and done.reason == "us-west-2 is already the writer of orders; no failover"


def test_a_promotion_interrupted_after_the_target_took_writes_is_finished_not_skipped() -> None:
    """The engine died inside db.failover after the promotion: the target writes, but the operation has not
    recorded its divergence point nor its slots yet. The re-run must finish it (the port resumes the same
    promotion, so there is still one)."""
    promoted = DatabaseStatus("orders", WEST, {EAST: MemberStatus(EAST, "diverged", 1),
                                               WEST: MemberStatus(WEST, "writer", 2)}, interrupted_to=WEST)
    plan = plan_promotion(promoted, WEST, "failover")
    assert plan.act and plan.reason == "finish the interrupted promotion of orders to us-west-2 (failover)"


def test_preserve_and_rebuild_decisions() -> None:
    diverged = _status(WEST, MemberStatus(EAST, "diverged", 1), MemberStatus(WEST, "writer", 2))
    assert plan_preserve(diverged, EAST).act
    assert plan_rebuild(diverged, EAST).act
    following = _status(WEST, MemberStatus(EAST, "standby", 2, True, 0), MemberStatus(WEST, "writer", 2))
    assert plan_preserve(following, EAST).reason == ("us-east-1 follows the writer of orders on timeline 2; "
                                                     "nothing diverged to keep")
    assert not plan_rebuild(following, EAST).act
    with pytest.raises(ActionError, match="us-west-2 is the writer of orders; only a former writer is rebuilt"):
        plan_rebuild(following, WEST)


def test_rebuild_without_a_kept_copy_is_refused_by_the_port(tmp_path: Path) -> None:
    dbs = FakeDatabases(REGIONS)
    dbs.failover("orders", WEST)
    ports = fake_ports(REGIONS)
    ports = type(ports)(dbs, ports.routing, ports.reconciler)
    ctx = ActionContext(execution_id="e", runbook="r", step="s", seq=1, attempt=1, ports=ports, regions=REGIONS,
                        services=_Quiet())  # type: ignore[arg-type]
    with pytest.raises(Exception, match="no preserved copy of its diverged data"):
        asyncio.run(DbRebuild().run(MemberInputs(database="orders", region=EAST), ctx))
    dbs.preserve("orders", EAST)
    out = asyncio.run(DbRebuild().run(MemberInputs(database="orders", region=EAST), ctx))
    assert out.changed and out.writer == WEST
    again = asyncio.run(DbRebuild().run(MemberInputs(database="orders", region=EAST), ctx))
    assert not again.changed and "already streams from the writer" in again.reason
    assert dbs.log.count(("rebuild", "orders", EAST)) == 1


class _Quiet:
    def note(self, message: str) -> None:
        return None


def test_routing_set_changes_only_what_differs_and_names_the_rule_that_refuses(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.write("Route", """
        description: routing
        parameters:
          override: {type: string, default: ""}
        steps:
          - name: Both
            action: routing.set
            inputs:
              changes: [{region: us-east-1, state: "Off"}, {region: us-west-2, state: Off}]
              overrides: ["{{ params.override }}"]
            outputs: {changed: changed, reason: reason}
    """)
    refused = h.run("Route")
    assert refused.status == J.FAILED and "refused by assertion rule AtLeastOneOn" in (refused.error or "")
    ok = h.run("Route", {"override": "AtLeastOneOn"})
    assert ok.status == J.SUCCEEDED
    run = h.journal().runs(ok.id)[0]
    assert run.outputs == {"changed": True, "reason": "us-east-1 On -> Off, us-west-2 On -> Off"}
    again = h.run("Route", {"override": "AtLeastOneOn"})
    assert h.journal().runs(again.id)[0].outputs == {"changed": False,
                                                     "reason": "already us-east-1 Off, us-west-2 Off"}


def test_routing_set_waits_out_a_running_wait_period_instead_of_failing(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    routing = h.ports.routing
    assert isinstance(routing, FakeRouting)
    routing.wait_periods = [0.3, 0.2]  # refused twice for a wait period, as right after a Failback re-enables
    h.write("Off", """
        description: one region off
        steps:
          - name: EastOff
            action: routing.set
            inputs: {region: us-east-1, state: "Off"}
    """)
    started = time.monotonic()
    done = h.run("Off")
    assert done.status == J.SUCCEEDED and routing.controls[EAST] == "Off"
    assert time.monotonic() - started >= 0.5
    waits = [e.message for e in h.journal().events(done.id) if "wait period" in (e.message or "")]
    assert len(waits) == 2 and "0.3 s" in waits[0], waits
