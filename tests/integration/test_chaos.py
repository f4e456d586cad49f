"""The reference's FIS scenario, run for real through the CLI: the regions are cut apart and the regional store
stops replicating; the remote canaries of both regions fail while the shop keeps serving users; everything is
reverted afterwards and the canaries pass again. The experiment is kept (the console draws it) and the remote
canaries' alert fired while it ran, only theirs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from regionctl.chaos import records
from regionctl.observe import prometheus
from regionctl.regionalstore import endpoints, status
from tests.integration.test_observe import all_pass
from tests.support.deploy import RunningDeployment
from tests.support.poll import eventually

pytestmark = pytest.mark.integration
REGIONCTL = str(Path(sys.executable).with_name("regionctl"))


def test_cross_region_connectivity_fails_only_what_crosses_and_is_fully_reverted(
        deployment: RunningDeployment) -> None:
    eventually(lambda: all_pass(deployment), timeout_s=60, interval_s=1)
    # 25 s of faults: the remote canaries fail from their first round after the cut (3 s timeout, 5 s apart) to
    # their first round after the revert, and the alert needs two evaluations 5 s apart that see it (scrapes every
    # 5 s); with 15 s the zeros lasted about 12 s and a late scrape could leave only one evaluation to see them
    run = subprocess.run([REGIONCTL, "chaos", "run", "cross-region-connectivity", "--duration", "25", "--yes",
                          "--format", "json"], env=deployment.cli_env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["stopped_by"] == "duration", result
    assert result["most_failing"] == {"local": 0, "remote": 8, "global": 0}, result
    assert any("link partitioned" in line for line in result["injected"])
    assert any("paused" in line for line in result["injected"])
    assert result["recovered_after_s"] is not None and result["revert_errors"] == []
    kept = records.listing(deployment.topo)[0]  # for the console's charts
    assert (kept["experiment"], kept["started_at"]) == ("cross-region-connectivity", result["started_at"])
    window = int(result["duration_s"]) + 10  # the faults in place, and the scrapes that saw the canaries pass
    fired = httpx.get(f"{prometheus.url(deployment.topo.ports)}/api/v1/query", timeout=10, params={
        "query": f'max_over_time(ALERTS{{alertname="CanaryKindFailing",alertstate="firing"}}[{window}s])',
        "time": result["started_at"] + window}).json()
    assert {r["metric"]["kind"] for r in fired["data"]["result"]} == {"remote"}  # and only the remote ones

    assert not any(d.partitioned for d in deployment.link.status().directions)
    a, b = deployment.settings.regions
    store = status.replication_status(endpoints.dsn(deployment.settings, a), endpoints.dsn(deployment.settings, b))
    assert [d.paused for d in store.directions] == [False, False]
    all_pass(deployment)


def test_an_unknown_experiment_is_refused_by_name(deployment: RunningDeployment) -> None:
    run = subprocess.run([REGIONCTL, "chaos", "run", "unplug-everything", "--yes"], env=deployment.cli_env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "no experiment named 'unplug-everything'" in run.stderr
    assert not any(d.partitioned for d in deployment.link.status().directions)
