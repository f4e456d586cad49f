"""Canaries and the console on the real deployment: every canary passes on a healthy shop; a link partition fails
exactly the remote ones (in both regions) and the console flags it; healing brings them back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from regionctl.observe.launch import canary_url, console_url
from tests.support.deploy import RunningDeployment
from tests.support.poll import eventually

pytestmark = pytest.mark.integration
REGIONCTL = str(Path(sys.executable).with_name("regionctl"))
PAGES = ("home", "cart", "catalog", "orders")


def canaries(deployment: RunningDeployment, region: str) -> dict[str, dict[str, Any]]:
    url = canary_url(deployment.topo.ports, region)
    assert url is not None
    report = httpx.get(f"{url}/canaries", timeout=10).json()
    return {c["name"]: c for c in report["canaries"]}


def overview(deployment: RunningDeployment) -> dict[str, Any]:
    url = console_url(deployment.topo.ports)
    assert url is not None
    return dict(httpx.get(f"{url}/api/overview", timeout=20).json())


def all_pass(deployment: RunningDeployment) -> None:
    for region in deployment.settings.regions:
        states = {name: c["state"] for name, c in canaries(deployment, region).items()}
        assert set(states.values()) == {"pass"}, states


def test_every_canary_of_both_regions_passes_on_its_own_target(deployment: RunningDeployment) -> None:
    eventually(lambda: all_pass(deployment), timeout_s=60, interval_s=1)
    for region in deployment.settings.regions:
        other = deployment.settings.other_region(region)
        found = canaries(deployment, region)
        assert len(found) == 12
        for page in PAGES:
            assert found[f"lcl-rgnl-{page}"]["url"] == f"{deployment.ui(region)}/{page}"
            assert found[f"global-{page}"]["url"] == f"{deployment.entry}/{page}"
            remote = found[f"rmt-rgnl-{page}"]
            assert remote["target"] == other
            # through the link: an address of this region, never the other region's front itself
            assert remote["url"].startswith(f"http://{deployment.settings.region_address(region)}:")
            assert remote["url"] != f"{deployment.ui(other)}/{page}"
            assert remote["last"]["status"] == 200 and remote["success_percent"] > 0


def test_a_partition_fails_the_remote_canaries_only_and_the_console_says_so(deployment: RunningDeployment) -> None:
    eventually(lambda: all_pass(deployment), timeout_s=60, interval_s=1)
    regions = deployment.settings.regions

    def remote_failing() -> dict[str, dict[str, Any]]:
        seen = {r: canaries(deployment, r) for r in regions}
        for found in seen.values():
            for name, c in found.items():
                assert c["state"] == ("fail" if name.startswith("rmt-rgnl-") else "pass"), (name, c["last"])
        return seen

    deployment.link.partition("both")
    try:
        seen = eventually(remote_failing, timeout_s=60, interval_s=1)
        reason = seen[regions[0]]["rmt-rgnl-home"]["last"]["reason"]
        assert reason, "a failed run says why"
        flags = eventually(lambda: _canary_flags(overview(deployment)), timeout_s=30, interval_s=1)
        assert {f.split(":")[0] for f in flags} == set(regions)
        assert all("4 canaries failing" in f for f in flags)
    finally:
        deployment.link.heal("both")
    eventually(lambda: all_pass(deployment), timeout_s=60, interval_s=1)


def _canary_flags(body: dict[str, Any]) -> list[str]:
    flags = [f["what"] for f in body["attention"] if "canaries failing" in f["what"]]
    assert len(flags) == 2, body["attention"]
    return flags


def test_the_console_shows_routing_databases_store_and_its_metrics(deployment: RunningDeployment) -> None:
    primary, standby = deployment.settings.regions
    body = eventually(lambda: _complete(overview(deployment)), timeout_s=60, interval_s=1)
    writers = {db["name"]: db["writer"] for db in body["databases"]["data"]}
    assert writers == {"orders": deployment.gdbs.state("orders").writer,
                       "catalog": deployment.gdbs.state("catalog").writer}
    directions = {(d["source"], d["target"]) for d in body["store"]["data"]["directions"]}
    assert directions == {(primary, standby), (standby, primary)}
    url = console_url(deployment.topo.ports)
    metrics = httpx.get(f"{url}/metrics", timeout=20).text
    orders_writer = writers["orders"]
    assert f'regionctl_globaldb_writer{{database="orders",region="{orders_writer}"}} 1.0' in metrics
    assert f'regionctl_console_region_routable{{region="{standby}"}} 1.0' in metrics
    assert 'regionctl_console_source_up{part="databases"} 1.0' in metrics


def _complete(body: dict[str, Any]) -> dict[str, Any]:
    """Every part read, and both regions routable (health checks recover a few seconds after a partition)."""
    assert all(body[part]["ok"] for part in ("routing", "databases", "store", "runbooks")), body
    assert all(r["routable"] for r in body["routing"]["data"]["regions"]), body["routing"]
    assert all(p["ok"] for p in body["canaries"].values()), body["canaries"]
    return body


def test_the_cli_prints_canaries_and_the_console(deployment: RunningDeployment) -> None:
    eventually(lambda: all_pass(deployment), timeout_s=60, interval_s=1)
    primary = deployment.settings.primary_region

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([REGIONCTL, *args], env={**deployment.cli_env, "COLUMNS": "120"},
                              capture_output=True, text=True, timeout=60)

    def all_twelve_pass() -> dict[str, Any]:
        report = json.loads(cli("canaries", "--region", primary, "--format", "json").stdout)
        failing = {c["name"]: c["last"] for c in report["canaries"] if c["state"] != "pass"}
        assert report["counts"].get("pass") == 12, failing  # a run may fail between two reads: say which and why
        return dict(report)

    report = eventually(all_twelve_pass, timeout_s=30, interval_s=1)
    assert report["region"] == primary and len(report["canaries"]) == 12
    table = cli("canaries", "--failing")
    assert table.returncode == 0 and "lcl-rgnl-home" not in table.stdout  # nothing fails now
    assert "lcl-rgnl-home" in cli("canaries").stdout
    console = json.loads(cli("console", "--format", "json").stdout)
    assert console["url"] == console_url(deployment.topo.ports) and console["routing"]["ok"]
    bad = cli("canaries", "--region", "eu-nowhere-1")
    assert bad.returncode != 0 and "unknown region 'eu-nowhere-1'" in bad.stderr
