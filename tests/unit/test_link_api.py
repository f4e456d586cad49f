"""The link control API in-process: 4xx bodies name the field, mutations need the token when one is set."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from regionctl.operators.store import OperatorStore
from regionctl.runtime.link import status_from_json
from regionctl.runtime.link_api import create_app, parse_args
from regionctl.runtime.link_engine import STATE_FILE, LinkEngine

TOKEN = "a-long-random-test-token-0123456789"


@pytest.fixture
def engine(tmp_path: Path) -> LinkEngine:
    return LinkEngine(tmp_path, ("us-east-1", "us-west-2"), latency_ms=30.0, jitter_ms=0.0)


def test_status_shows_every_direction_between_the_sites_at_its_initial_latency(tmp_path: Path) -> None:
    engine = LinkEngine(tmp_path, ("us-east-1", "us-west-2"), latency_ms=30.0, jitter_ms=0.0,
                        control_latency_ms=1.0, control_jitter_ms=0.5)
    data = TestClient(create_app(engine)).get("/status").json()
    assert {(d["src"], d["dst"], d["latency_ms"], d["jitter_ms"], d["partitioned"]) for d in data["directions"]} == {
        ("us-east-1", "us-west-2", 30.0, 0.0, False),
        ("us-west-2", "us-east-1", 30.0, 0.0, False),
        ("us-east-1", "global", 1.0, 0.5, False),
        ("global", "us-east-1", 1.0, 0.5, False),
        ("us-west-2", "global", 1.0, 0.5, False),
        ("global", "us-west-2", 1.0, 0.5, False),
    }
    assert data["routes"] == [] and data["isolated"] == []


def partitioned(engine: LinkEngine) -> set[str]:
    return {d.name for d in engine.status().directions if d.partitioned}


EAST_CUT = {"us-east-1->us-west-2", "us-west-2->us-east-1", "us-east-1->global", "global->us-east-1"}


def test_isolate_cuts_every_direction_of_the_region_and_the_status_says_it_is_isolated(
    engine: LinkEngine, tmp_path: Path
) -> None:
    api = TestClient(create_app(engine))
    answer = api.post("/isolate", json={"region": "us-east-1"})
    assert answer.status_code == 200
    assert answer.json()["isolated"] == ["us-east-1"]
    assert status_from_json(answer.json()).isolated == ("us-east-1",)
    assert partitioned(engine) == EAST_CUT  # us-west-2 still reaches the global plane and back
    again = LinkEngine(tmp_path, ("us-east-1", "us-west-2"), latency_ms=30.0, jitter_ms=0.0)
    assert again.status().isolated == ("us-east-1",)  # persisted like any partition


def test_a_plain_partition_and_heal_of_the_regions_leave_the_control_path_alone(engine: LinkEngine) -> None:
    api = TestClient(create_app(engine))
    api.post("/partition", json={})
    assert partitioned(engine) == {"us-east-1->us-west-2", "us-west-2->us-east-1"}
    assert engine.status().isolated == ()
    api.post("/partition", json={"direction": "global->us-west-2"})
    api.put("/directions", json={"latency_ms": 99})
    assert {d.name for d in engine.status().directions if d.latency_ms == 99} == {"us-east-1->us-west-2",
                                                                                   "us-west-2->us-east-1"}
    api.post("/heal", json={"direction": "us-east-1<->us-west-2"})
    assert partitioned(engine) == {"global->us-west-2"}


def test_heal_both_ends_an_isolation_and_a_named_direction_heals_only_itself(engine: LinkEngine) -> None:
    api = TestClient(create_app(engine))
    api.post("/isolate", json={"region": "us-east-1"})
    assert api.post("/heal", json={"direction": "us-east-1<->global"}).json()["isolated"] == []
    assert partitioned(engine) == {"us-east-1->us-west-2", "us-west-2->us-east-1"}
    api.post("/isolate", json={"region": "us-east-1", "reset": True})
    api.post("/partition", json={"direction": "us-west-2->global"})
    assert api.post("/heal", json={}).status_code == 200  # the default: both, which for heal is everything
    assert partitioned(engine) == set()


def test_a_change_is_persisted_before_it_is_answered(engine: LinkEngine, tmp_path: Path) -> None:
    api = TestClient(create_app(engine))
    assert api.put("/directions/us-east-1/us-west-2", json={"latency_ms": 80}).status_code == 200
    assert api.post("/partition", json={"direction": "us-west-2->us-east-1"}).status_code == 200
    again = LinkEngine(tmp_path, ("us-east-1", "us-west-2"), latency_ms=1.0, jitter_ms=0.0).status()
    assert again.direction("us-east-1", "us-west-2").latency_ms == 80
    assert again.direction("us-west-2", "us-east-1").partitioned
    assert (tmp_path / STATE_FILE).exists()


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        ("put", "/directions/us-east-1/us-west-2", {"latency_ms": -5}, "latency_ms"),
        ("put", "/directions/us-east-1/us-west-2", {"latency_ms": "slow"}, "latency_ms"),
        ("put", "/directions/us-east-1/us-west-2", {}, "latency_ms"),
        ("put", "/directions/us-east-1/ap-south-1", {"latency_ms": 5}, "ap-south-1"),
        ("put", "/directions", {"direction": "both", "jitter": 5}, "jitter"),
        ("post", "/partition", {"direction": "sideways"}, "direction"),
        ("post", "/heal", {"direction": "us-east-1->us-east-1"}, "direction"),
        ("post", "/heal", {"direction": "global->global"}, "direction"),
        ("post", "/partition", {"direction": "global->mars-1"}, "mars-1"),
        ("post", "/isolate", {"region": "eu-west-1"}, "region"),
        ("post", "/isolate", {"region": "global"}, "region"),
        ("post", "/isolate", {}, "region"),
        ("post", "/isolate", {"region": "us-east-1", "reset": "maybe"}, "reset"),
        ("post", "/isolate", {"region": "us-east-1", "direction": "both"}, "direction"),
        ("post", "/routes", {"name": "x", "src_region": "global", "dst_region": "global",
                             "listen_host": "127.0.0.1", "listen_port": 17001, "target_host": "127.0.2.1",
                             "target_port": 5432}, "dst_region"),
        ("post", "/routes", {"name": "x"}, "src_region"),
        ("post", "/routes", {"name": "x", "src_region": "us-east-1", "dst_region": "us-west-2",
                             "listen_host": "127.0.1.1", "listen_port": 99999, "target_host": "127.0.2.1",
                             "target_port": 5432}, "listen_port"),
        ("post", "/routes", {"name": "x", "src_region": "us-east-1", "dst_region": "us-west-2",
                             "listen_path": "etcd-b:2380", "target_path": "/run/b/etcd-b:2380"}, "listen_path"),
        ("post", "/routes", {"name": "x", "src_region": "us-east-1", "dst_region": "us-west-2",
                             "listen_path": "/run/a/etcd-b:2380", "target_path": "/" + "b" * 120}, "target_path"),
        ("post", "/routes", {"name": "x", "src_region": "us-east-1", "dst_region": "us-west-2",
                             "listen_path": "/run/a/etcd-b:2380"}, "target_host"),
        ("post", "/routes", {"name": "x", "src_region": "us-east-1", "dst_region": "us-west-2",
                             "listen_path": 5, "target_path": "/run/b/etcd-b:2380"}, "listen_path"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(
    engine: LinkEngine, method: str, path: str, body: dict[str, object], named: str
) -> None:
    answer = TestClient(create_app(engine)).request(method.upper(), path, json=body)
    assert 400 <= answer.status_code < 500
    assert named in answer.json()["message"]
    assert not any(d.partitioned for d in engine.status().directions)


def test_a_unix_socket_route_is_added_shown_and_removed_with_its_socket_file(
    engine: LinkEngine, tmp_path: Path
) -> None:
    listen, target = tmp_path / "etcd-b:2380", tmp_path / "b" / "etcd-b:2380"
    body = {"name": "us-east-1/us-west-2/etcd/us-west-2", "src_region": "us-east-1", "dst_region": "us-west-2",
            "listen_path": str(listen), "target_path": str(target)}
    with TestClient(create_app(engine)) as api:  # one event loop for the listener's whole life
        added = api.post("/routes", json=body)
        assert added.status_code == 200, added.text
        assert added.json() == {**body, "listen_host": "", "listen_port": 0, "target_host": "", "target_port": 0}
        assert listen.is_socket()
        shown = api.get("/status").json()["routes"][0]
        assert shown["route"]["listen_path"] == str(listen) and shown["route"]["target_path"] == str(target)
        assert shown["listening"] is True
        assert status_from_json(api.get("/status").json()).route(body["name"]).route.target_path == str(target)
        assert api.post("/routes", json=body).status_code == 200  # the same route again: nothing changes
        assert api.delete(f"/routes/{body['name']}").json()["removed"] is True
        assert not listen.exists()


def test_with_a_token_changes_need_it_and_reads_do_not(engine: LinkEngine) -> None:
    api = TestClient(create_app(engine, OperatorStore(None, TOKEN)))
    assert api.get("/status").status_code == 200
    refused = api.post("/partition", json={"direction": "both"})
    assert refused.status_code == 401 and "token" in refused.json()["message"]
    wrong = api.post("/partition", json={"direction": "both"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert not any(d.partitioned for d in engine.status().directions)
    assert api.post("/isolate", json={"region": "us-east-1"}).status_code == 401
    assert not any(d.partitioned for d in engine.status().directions)
    ok = api.post("/partition", json={"direction": "both"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert all(d.partitioned != d.control_path for d in engine.status().directions)
    assert TOKEN not in ok.text


def test_the_serve_command_line_is_checked() -> None:
    args = parse_args(["serve", "--state-dir", "/tmp/x", "--control", "127.0.0.1:9", "--regions", "a-b-1,c-d-2"])
    assert args.control == ("127.0.0.1", 9) and args.regions == ("a-b-1", "c-d-2")
    assert (args.control_latency_ms, args.control_jitter_ms) == (0.0, 0.0)
    control = parse_args(["serve", "--state-dir", "/tmp/x", "--control", "127.0.0.1:9", "--control-latency-ms", "2.5",
                          "--control-jitter-ms", "0.5"])
    assert (control.control_latency_ms, control.control_jitter_ms) == (2.5, 0.5)
    for bad in (["--control", "nohost"], ["--control", "h:99999"], ["--regions", "only-one-1"]):
        with pytest.raises(SystemExit):
            parse_args(["serve", "--state-dir", "/tmp/x", "--control", "127.0.0.1:9", *bad])
