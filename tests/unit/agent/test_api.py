"""The agent's HTTP contract without a database: every call authenticated, bad input refused naming the field,
and each operation saying what it did (or why not) when the world does not allow it. The operations themselves
run against real PostgreSQL in every integration drill (each goes through the agents)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from regionctl.agent.api import create_app
from regionctl.agent.client import AgentClient
from regionctl.agent.host import RegionHost
from regionctl.agent.lease import LeaseKeeper
from regionctl.config import load_settings
from regionctl.errors import ConflictError, InputError, NotFoundError, Unauthorized, Unreachable
from regionctl.runtime.etcdclient import Etcd
from regionctl.runtime.topology import Topology

TOKEN = "agent-token-for-the-unit-tests-0123456789"


class FakeEtcd:
    """etcd's JSON gateway answering key reads: the writer lease names ``holder`` (None: nobody)."""

    def __init__(self) -> None:
        self.holder: str | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v3/lease/grant":
            return httpx.Response(200, json={"ID": "7", "TTL": "6"})
        if path == "/v3/lease/keepalive":
            return httpx.Response(200, json={"result": {"ID": "7", "TTL": "6"}})
        if path == "/v3/kv/txn":  # the only txn the agent sends here: take the free key
            taken = self.holder is None
            self.holder = self.holder or "us-east-1"
            return httpx.Response(200, json={"succeeded": taken})
        if path != "/v3/kv/range":
            return httpx.Response(404)
        kvs = [] if self.holder is None else [{"value": base64.b64encode(self.holder.encode()).decode(),
                                               "lease": "7", "mod_revision": "3"}]
        return httpx.Response(200, json={"kvs": kvs})


@pytest.fixture()
def etcd() -> FakeEtcd:
    return FakeEtcd()


@pytest.fixture()
def http(tmp_path: Path, etcd: FakeEtcd) -> Iterator[TestClient]:
    settings = load_settings(data_dir=tmp_path / "data", base_port=31000)
    host = RegionHost(Topology(settings), "us-east-1")
    keeper = LeaseKeeper(host, Etcd("http://etcd", transport=httpx.MockTransport(etcd.handle)), settings.leases)
    app = create_app(host, TOKEN, keeper)
    with TestClient(app, headers={"authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture()
def agent(http: TestClient) -> AgentClient:
    return AgentClient("us-east-1", "http://agent", TOKEN, transport=http._transport)  # type: ignore[attr-defined]


def test_every_v1_call_needs_the_token_and_health_does_not(http: TestClient) -> None:
    assert http.get("/v1/status", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert http.post("/v1/members/orders/stop", json={"mode": "immediate"}, headers={"authorization": ""}
                     ).status_code == 401
    assert http.get("/health", headers={"authorization": ""}).json() == {"ok": True, "region": "us-east-1"}


def test_a_wrong_token_is_an_unauthorized_error_on_the_client_side(http: TestClient) -> None:
    wrong = AgentClient("us-east-1", "http://agent", "x" * 32, transport=http._transport)  # type: ignore[attr-defined]
    with pytest.raises(Unauthorized):
        wrong.call("GET", "/v1/status")


def test_an_unknown_database_is_refused_naming_the_field(agent: AgentClient) -> None:
    with pytest.raises(InputError, match="database: unknown 'payments'"):
        agent.call("GET", "/v1/members/payments")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/members/orders/stop", {"mode": "gentle"}, "mode"),
    ("/v1/members/orders/start", {"role": "leader"}, "role"),
    ("/v1/members/orders/start", {"role": "writer", "extra": 1}, "extra"),
    ("/v1/members/orders/rewind", {"source_conninfo": ""}, "source_conninfo"),
    ("/v1/members/orders/waldump", {"kind": "recon", "name": "x", "start": "nonsense", "timeline": 1}, "start"),
    ("/v1/members/orders/archive/pull", {"origin": "us-west-2", "source_url": "ftp://x"}, "source_url"),
])
def test_a_malformed_body_is_refused_naming_the_field(agent: AgentClient, path: str, body: dict[str, object],
                                                      field: str) -> None:
    with pytest.raises(InputError, match=f"{field}:"):
        agent.call("POST", path, body)


def test_a_member_that_was_never_created_is_reported_as_such(agent: AgentClient) -> None:
    seen = agent.call("GET", "/v1/members/orders")
    assert (seen["exists"], seen["running"], seen["name"]) == (False, False, "orders-us-east-1")


def test_stopping_a_stopped_member_says_it_was_not_running(agent: AgentClient) -> None:
    assert agent.call("POST", "/v1/members/orders/stop", {"mode": "immediate"})["action"] == "not_running"


def test_operations_the_world_forbids_are_conflicts_and_change_nothing(agent: AgentClient, tmp_path: Path) -> None:
    with pytest.raises(ConflictError, match="no data directory"):
        agent.call("POST", "/v1/members/orders/start", {"role": "writer"})
    with pytest.raises(ConflictError, match="nothing to preserve"):
        agent.call("POST", "/v1/members/orders/preserve", {"name": "copy-1"})
    with pytest.raises(ConflictError, match="not running"):
        agent.call("POST", "/v1/members/orders/promote")
    with pytest.raises(InputError, match="a standby needs"):
        agent.call("POST", "/v1/members/orders/start", {"role": "standby"})
    assert not (tmp_path / "data" / "regions" / "us-east-1" / "pg" / "orders").exists()


def test_no_writer_starts_or_is_promoted_while_the_lease_names_another_region(agent: AgentClient,
                                                                              etcd: FakeEtcd) -> None:
    etcd.holder = "us-west-2"
    with pytest.raises(ConflictError, match="writer lease is held by us-west-2"):
        agent.call("POST", "/v1/members/orders/start", {"role": "writer"})
    with pytest.raises(ConflictError, match="writer lease is held by us-west-2"):
        agent.call("POST", "/v1/members/orders/promote")


def test_names_that_could_escape_their_directory_are_refused(agent: AgentClient) -> None:
    with pytest.raises(InputError, match="name:"):
        agent.call("POST", "/v1/members/orders/preserve", {"name": "../../etc"})
    with pytest.raises(InputError, match="not a WAL file name"):
        agent.call("GET", "/v1/members/orders/archive/.secrets")
    with pytest.raises(NotFoundError, match="not held"):
        agent.call("POST", "/v1/members/orders/restores", {"id": "r-1", "snapshot": "snap-x", "target": {"lsn": "0/1"}})


def test_a_restore_target_must_be_exactly_one_kind(agent: AgentClient) -> None:
    with pytest.raises(InputError, match="target: give exactly one"):
        agent.call("POST", "/v1/members/orders/restores",
                   {"id": "r-1", "snapshot": "snap-x", "target": {"lsn": "0/1", "time": "2026-01-01T00:00:00+00:00"}})


def test_an_agent_that_does_not_answer_is_unreachable_not_stopped() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = AgentClient("us-east-1", "http://127.0.1.1:1", TOKEN, transport=httpx.MockTransport(refuse))
    with pytest.raises(Unreachable, match="agent of us-east-1 .* cannot be reached"):
        client.call("GET", "/v1/members/orders")
