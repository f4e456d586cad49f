"""The metrics store's files as Prometheus itself reads them: ``promtool`` checks the configuration and the rules,
and runs the alert rules over synthetic series (each alert fires after its ``for`` and not before, and stays
quiet on a healthy deployment). The scrape targets follow the supervisor's running processes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from regionctl.config import load_settings
from regionctl.observe import prometheus
from regionctl.runtime.supervisor import ProcessState
from regionctl.runtime.topology import Topology

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="Debian's prometheus (promtool) is not installed: "
                                    "`make prometheus`")


def state(key: str, metrics_url: str | None) -> ProcessState:
    return ProcessState(key=key, region=key.split("/")[0], pid=1, pgid=1, argv=("x",), log_file="l",
                        metrics_url=metrics_url)


def test_targets_are_the_processes_serving_metrics_with_their_path_site_and_component() -> None:
    groups = prometheus.scrape_targets([
        state("us-east-1/orders", "http://127.0.0.2:20010/metrics"), state("global/link", None),
        state("global/entry", "http://127.0.0.1:20003/_entry/metrics")])
    assert groups == [
        {"targets": ["127.0.0.1:20003"], "labels": {"__metrics_path__": "/_entry/metrics", "site": "global",
                                                    "component": "entry"}},
        {"targets": ["127.0.0.2:20010"], "labels": {"__metrics_path__": "/metrics", "site": "us-east-1",
                                                    "component": "orders"}}]


def test_targets_are_replaced_whole_when_the_running_processes_change(tmp_path: Path) -> None:
    prometheus.write_targets(tmp_path, [state("us-east-1/ui", "http://127.0.0.2:1/metrics")])
    prometheus.write_targets(tmp_path, [state("us-east-1/ui", "http://127.0.0.2:2/metrics")])  # restarted
    assert [g["targets"] for g in json.loads((tmp_path / prometheus.TARGETS).read_text())] == [["127.0.0.2:2"]]
    assert [p.name for p in tmp_path.iterdir()] == [prometheus.TARGETS]  # no temporary file left behind


@pytest.fixture
def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    settings = load_settings(data_dir=tmp_path / "data", base_port=31000,
                             metrics={"prometheus_bin": PROMTOOL, "lag_bytes_above": 1000, "for_s": 30,
                                      "approval_wait_s": 600, "alertmanager": "127.0.0.1:9093"})
    spec = prometheus.process_spec(Topology(settings))
    assert spec is not None and any(a.startswith("--storage.tsdb.retention.time=48h") for a in spec.argv)
    return Topology(settings).paths.prometheus


@needs_promtool
def test_promtool_accepts_the_configuration_and_the_rules(written: Path) -> None:
    checked = subprocess.run([str(PROMTOOL), "check", "config", str(written / prometheus.CONFIG)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    notified = yaml.safe_load((written / prometheus.CONFIG).read_text())["alerting"]
    assert notified == {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]}


def test_a_bad_alertmanager_address_is_refused_naming_the_field(tmp_path: Path) -> None:
    from regionctl.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        load_settings(data_dir=tmp_path, metrics={"alertmanager": "http://x:9093/"})
    assert "metrics.alertmanager" in str(refused.value)


ALERT_TESTS = {
    "evaluation_interval": "15s",
    "tests": [
        {"interval": "15s",
         "input_series": [
             {"series": 'regionctl_globaldb_lag_bytes{database="orders",region="us-west-2"}',
              "values": "0 0 5000 5000 5000 5000 0 0"},
             {"series": 'regionctl_console_region_routable{region="us-east-1"}', "values": "1x7"},
             {"series": 'regionctl_console_region_routable{region="us-west-2"}', "values": "1x7"},
             {"series": 'regionctl_runbook_waiting_for_approval{runbook="RegionFailover",execution="e1"}',
              "values": "1x60"}],
         "alert_rule_test": [
             {"eval_time": "45s", "alertname": "GlobalDatabaseLagBytes", "exp_alerts": []},  # above for 15 s only
             {"eval_time": "60s", "alertname": "GlobalDatabaseLagBytes", "exp_alerts": [
                 {"exp_labels": {"severity": "critical", "database": "orders", "region": "us-west-2"},
                  "exp_annotations": {"summary": "orders standby in us-west-2 is 5000 bytes behind"}}]},
             {"eval_time": "105s", "alertname": "GlobalDatabaseLagBytes", "exp_alerts": []},  # resolved
             {"eval_time": "60s", "alertname": "NoRegionReceivesTraffic", "exp_alerts": []},
             {"eval_time": "9m", "alertname": "RunbookWaitingForApproval", "exp_alerts": []},
             {"eval_time": "11m", "alertname": "RunbookWaitingForApproval", "exp_alerts": [
                 {"exp_labels": {"severity": "warning", "runbook": "RegionFailover", "execution": "e1"},
                  "exp_annotations": {"summary": "runbook RegionFailover (e1) waits for approval"}}]}]},
        {"interval": "15s",
         "input_series": [
             {"series": 'regionctl_console_region_routable{region="us-east-1"}', "values": "0x7"},
             {"series": 'regionctl_console_region_routable{region="us-west-2"}', "values": "0x7"},
             {"series": 'regionctl_canary_success{region="us-east-1",kind="remote",canary="rmt-rgnl-home"}',
              "values": "1 0 0 0 0"},
             {"series": 'regionctl_canary_success{region="us-east-1",kind="remote",canary="rmt-rgnl-cart"}',
              "values": "1 1 1 1 1"}],
         "alert_rule_test": [
             {"eval_time": "60s", "alertname": "NoRegionReceivesTraffic", "exp_alerts": [
                 {"exp_labels": {"severity": "critical"}, "exp_annotations": {
                     "summary": "no region receives traffic: every routing control is off or every region "
                                "unhealthy"}}]},
             {"eval_time": "60s", "alertname": "CanaryKindFailing", "exp_alerts": [
                 {"exp_labels": {"severity": "warning", "region": "us-east-1", "kind": "remote"},
                  "exp_annotations": {"summary": "remote canaries of us-east-1 are failing"}}]}]},
    ],
}


@needs_promtool
def test_the_alerts_fire_after_their_hold_and_resolve(written: Path, tmp_path: Path) -> None:
    cases = tmp_path / "alerts_test.yml"
    cases.write_text(yaml.safe_dump({"rule_files": [str(written / prometheus.RULES)], **ALERT_TESTS}))
    tested = subprocess.run([str(PROMTOOL), "test", "rules", str(cases)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_without_a_binary_nothing_starts_and_the_reason_names_the_fix(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", base_port=31000,
                             metrics={"prometheus_bin": tmp_path / "no-such-prometheus"})
    assert prometheus.process_spec(Topology(settings)) is None
    reason = prometheus.unavailable(settings)
    assert reason is not None and "make prometheus" in reason and "no-such-prometheus" in reason
