"""The service kit's pure decisions: what is retried, how readiness aggregates, how errors map to statuses."""

from __future__ import annotations

import random
import threading
from typing import Annotated

import psycopg
import pytest
from fastapi import Query
from fastapi.testclient import TestClient
from psycopg import errors as pgerrors

from regionctl.errors import (
    ConfigError,
    ConflictError,
    DatabaseError,
    InputError,
    NotFoundError,
    OperationTimeout,
    http_status,
)
from regionctl.shop.kit.app import ServiceKit, blocking, create_app
from regionctl.shop.kit.db import describe_dsn
from regionctl.shop.kit.http import ServiceCallError
from regionctl.shop.kit.migrate import Migration, pending
from regionctl.shop.kit.readiness import Check, ComponentStatus, Degraded, Readiness, aggregate
from regionctl.shop.kit.retry import backoff_s, classify
from regionctl.shop.kit.settings import load_service_settings


def test_a_read_only_error_means_the_writer_moved_so_reconnect_and_retry() -> None:
    decision = classify(pgerrors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"))
    assert decision.retry and decision.reconnect and "writer moved" in decision.reason


def test_connection_loss_and_timeouts_are_retried_on_a_new_connection() -> None:
    assert classify(psycopg.OperationalError("server closed the connection unexpectedly")).reconnect
    assert classify(pgerrors.AdminShutdown("terminating connection")).reconnect
    assert classify(OperationTimeout("no answer")).reconnect


def test_serialization_failures_retry_on_the_same_connection_and_bugs_do_not_retry() -> None:
    decision = classify(pgerrors.SerializationFailure("could not serialize"))
    assert decision.retry and not decision.reconnect
    assert not classify(pgerrors.UniqueViolation("duplicate key")).retry
    assert not classify(pgerrors.UndefinedTable("no such table")).retry


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_s(n, base_s=0.1, cap_s=1.0, jitter=0, rng=rng) for n in range(1, 7)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_readiness_is_down_when_a_critical_dependency_is_down_and_says_which() -> None:
    report = aggregate([ComponentStatus("db", False, "connection refused"), ComponentStatus("x", False, "meh", False),
                        ComponentStatus("carts", True, "ok")])
    assert not report.ready and report.reason == "db: connection refused"
    assert aggregate([ComponentStatus("x", False, "meh", critical=False)]).ready


def test_a_degraded_dependency_leaves_the_service_ready_and_says_what_waits() -> None:
    def writer() -> str:
        raise Degraded("new orders wait for the writer")

    report = Readiness([Check("orders-writer", writer), Check("db", lambda: "fine")]).evaluate()
    assert report.ready and report.degraded
    assert report.reason == "degraded: orders-writer: new orders wait for the writer"
    body = report.as_json("orders", "us-west-2")
    assert (body["status"], body["degraded"]) == ("UP", True)
    assert body["components"]["orders-writer"] == {"status": "DEGRADED", "detail": "new orders wait for the writer",  # type: ignore[index]
                                                   "critical": True}
    down = aggregate([ComponentStatus("db", False, "refused"), ComponentStatus("w", True, "far", degraded=True)])
    assert not down.ready and not down.degraded and down.reason == "db: refused"  # down beats degraded


def test_readiness_runs_checks_and_caches_them_briefly() -> None:
    calls = []
    now = [0.0]

    def check() -> str:
        calls.append(1)
        raise RuntimeError("boom")

    readiness = Readiness([Check("a", check), Check("b", lambda: "fine")], ttl_s=1.0, clock=lambda: now[0])
    assert not readiness.evaluate().ready
    readiness.evaluate()
    assert len(calls) == 1
    now[0] = 2.0
    readiness.evaluate()
    assert len(calls) == 2


def test_errors_map_to_statuses() -> None:
    assert http_status(InputError("x")) == 400
    assert http_status(NotFoundError("x")) == 404
    assert http_status(ConflictError("x")) == 409
    assert http_status(DatabaseError("x")) == 503
    assert http_status(ServiceCallError("orders", "down")) == 503
    assert http_status(ServiceCallError("orders", "refused", 409)) == 502
    assert http_status(ValueError("x")) == 500


def test_an_unexpected_error_is_a_500_without_its_details() -> None:
    app = create_app(ServiceKit.create("t", "us-east-1"), title="t", description="", health_paths=("/health",))

    @app.get("/boom")
    def boom() -> None:
        raise ValueError("secret internals")

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500 and response.json() == {"code": 500, "message": "internal error"}


def test_a_blocking_endpoint_runs_off_the_event_loop_with_its_parameters_validated_and_documented() -> None:
    app = create_app(ServiceKit.create("t", "us-east-1"), title="t", description="", health_paths=("/health",))
    threads: dict[str, int] = {}

    @app.get("/loop")
    async def loop() -> dict[str, int]:
        threads["loop"] = threading.get_ident()
        return {}

    @app.get("/items/{item}")
    @blocking
    def item(item: str, count: Annotated[int, Query(ge=1)] = 1) -> dict[str, object]:
        """Reads a database."""
        threads["item"] = threading.get_ident()
        if item == "gone":
            raise NotFoundError("item gone not found")
        return {"item": item, "count": count}

    with TestClient(app) as client:  # one event loop thread, alive throughout (a thread id is reused once dead)
        client.get("/loop")
        assert client.get("/items/a", params={"count": 3}).json() == {"item": "a", "count": 3}
        assert threads["item"] != threads["loop"]
        assert client.get("/items/a", params={"count": 0}).status_code == 400
        assert client.get("/items/gone").status_code == 404
        operation = client.get("/openapi.json").json()["paths"]["/items/{item}"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["item", "count"]
    assert operation["description"] == "Reads a database."


def test_dsn_descriptions_never_show_passwords() -> None:
    text = describe_dsn("host=a,b port=1,2 dbname=orders user=u password=hunter2 target_session_attrs=read-write")
    assert "hunter2" not in text and text == "orders@a,b:1,2"


def test_migrations_pending_in_order_and_duplicates_refused() -> None:
    steps = [Migration(2, "b", "select 2"), Migration(1, "a", "select 1"), Migration(3, "c", "select 3")]
    assert [m.version for m in pending({2}, steps)] == [1, 3]
    with pytest.raises(ValueError, match="duplicate"):
        pending(set(), [Migration(1, "a"), Migration(1, "b")])


def test_settings_name_the_missing_or_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGION", raising=False)
    with pytest.raises(ConfigError, match="REGION"):
        load_service_settings()
    with pytest.raises(ConfigError, match="ENDPOINTS_ORDERS"):
        load_service_settings(region="us-east-1", endpoints_orders="orders:8080")
    settings = load_service_settings(region="us-east-1", endpoints_orders="false")
    with pytest.raises(ConfigError, match="ENDPOINTS_ORDERS is not set"):
        settings.endpoint("orders")
    with pytest.raises(ConfigError, match="ORDERS_WRITER_DSN"):
        settings.dsn("orders_writer_dsn")
    with pytest.raises(ConfigError, match="WORKER_PORT 8080 is PORT itself"):
        load_service_settings(region="us-east-1", port=8080, worker_port=8080)
    with pytest.raises(ConfigError, match="WORKER_PORT"):
        load_service_settings(region="us-east-1", worker_port=70000)


def test_request_metrics_count_each_kind_of_request_apart_and_errors_only_for_5xx() -> None:
    from regionctl.shop.kit.metrics import ServiceMetrics

    metrics = ServiceMetrics("carts", "us-east-1")
    for _ in range(3):
        metrics.observe_request("GET", "/carts/{customerId}", 200, 0.002)
    metrics.observe_request("GET", "/carts/{customerId}", 404, 0.001)
    metrics.observe_request("POST", "/carts/{customerId}/items", 503, 0.3)
    metrics.observe_request("POST", "/carts/{customerId}/items", 503, 0.3)
    text = metrics.render().decode()
    labels = 'region="us-east-1",route="/carts/{customerId}",service="carts"'
    assert f'shop_http_requests_total{{method="GET",{labels},status="200"}} 3.0' in text
    assert f'shop_http_requests_total{{method="GET",{labels},status="404"}} 1.0' in text
    assert f'shop_http_request_duration_seconds_count{{method="GET",{labels}}} 4.0' in text
    assert 'shop_http_errors_total{method="POST",region="us-east-1",route="/carts/{customerId}/items",' \
           'service="carts"} 2.0' in text
    assert 'shop_http_errors_total{method="GET"' not in text
