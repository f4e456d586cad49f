"""The deployment's metrics history: Debian's Prometheus on the global plane, its configuration, its scrape
targets and its alert rules, all written from the settings under ``<root>/prometheus``.

Targets come from the supervisor: every supervised process that serves metrics names its URL
(``ProcessSpec.metrics_url``) and each time the running set changes (a start, a restart, a new port) the
supervisor's listener rewrites ``targets.json``, which Prometheus's file-based discovery follows by itself.
Without a binary nothing of this starts and ``unavailable`` says why; the rest of the deployment runs as before.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from regionctl.config import MetricsSettings, Settings
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec
from regionctl.runtime.supervisor import ProcessState
from regionctl.runtime.topology import GLOBAL_HOST, Topology

NAME = "prometheus"
TARGETS, CONFIG, RULES = "targets.json", "prometheus.yml", "rules.yml"


def binary(settings: Settings) -> str | None:
    configured = settings.metrics.prometheus_bin
    found = str(configured) if configured else shutil.which(NAME)
    return found if found and Path(found).exists() else None


def unavailable(settings: Settings) -> str | None:
    """Why there is no metrics history (None: there is one)."""
    if binary(settings) is None:
        where = settings.metrics.prometheus_bin or "PATH"
        return (f"no Prometheus binary ({where}): install Debian's prometheus (`make prometheus`) or set "
                "metrics.prometheus_bin; the console shows the present only")
    return None


def url(ports: PortRegistry) -> str | None:
    """Where a running deployment's Prometheus answers (None if never started)."""
    known = ports.all().get(f"{GLOBAL_PLANE}/{NAME}")
    return None if known is None else f"http://{known[0]}:{known[1]}"


def scrape_targets(processes: Iterable[ProcessState]) -> list[dict[str, Any]]:
    """File-based discovery groups: one per process serving metrics, labelled with its region and component."""
    groups = []
    for p in sorted(processes, key=lambda p: p.key):
        if not p.metrics_url:
            continue
        parts = urlsplit(p.metrics_url)
        groups.append({"targets": [parts.netloc], "labels": {
            "__metrics_path__": parts.path or "/metrics", "site": p.region, "component": p.key.split("/", 1)[1]}})
    return groups


def write_targets(directory: Path, processes: Sequence[ProcessState]) -> None:
    """Replace ``targets.json`` atomically (Prometheus re-reads it on change; a half file would drop targets)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (TARGETS + ".tmp")
    tmp.write_text(json.dumps(scrape_targets(processes), indent=1))
    tmp.replace(directory / TARGETS)


def config(settings: Settings, directory: Path) -> dict[str, Any]:
    interval = f"{settings.metrics.scrape_interval_s}s"
    notify = settings.metrics.alertmanager
    alerting = {"alerting": {"alertmanagers": [{"static_configs": [{"targets": [notify]}]}]}} if notify else {}
    return {
        **alerting,
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "external_labels": {"deployment": settings.env}},
        "rule_files": [str(directory / RULES)],
        "scrape_configs": [
            {"job_name": "regionctl", "file_sd_configs": [{"files": [str(directory / TARGETS)],
                                                            "refresh_interval": interval}]},
            {"job_name": NAME, "static_configs": [{"targets": [f"{GLOBAL_HOST}:{{port}}"]}]},
        ],
    }


def rules(metrics: MetricsSettings) -> dict[str, Any]:
    """The alerts shipped with the deployment: what an operator must hear about (docs/observe.md)."""
    held = f"{metrics.for_s}s"

    def alert(name: str, expr: str, summary: str, severity: str = "warning", hold: str = held) -> dict[str, Any]:
        return {"alert": name, "expr": expr, "for": hold, "labels": {"severity": severity},
                "annotations": {"summary": summary}}

    return {"groups": [{"name": "regionctl", "rules": [
        alert("NoRegionReceivesTraffic", "sum(regionctl_console_region_routable) == 0",
              "no region receives traffic: every routing control is off or every region unhealthy", "critical"),
        alert("RegionNotRoutable", "regionctl_console_region_routable == 0",
              "{{ $labels.region }} receives no traffic"),
        alert("GlobalDatabaseLagBytes", f"regionctl_globaldb_lag_bytes > {metrics.lag_bytes_above}",
              "{{ $labels.database }} standby in {{ $labels.region }} is {{ $value }} bytes behind", "critical"),
        alert("GlobalDatabaseLagSeconds", f"regionctl_globaldb_lag_seconds > {metrics.lag_seconds_above}",
              "{{ $labels.database }} standby in {{ $labels.region }} is {{ $value }} s behind", "critical"),
        alert("CanaryKindFailing", "min by (region, kind) (regionctl_canary_success) == 0",
              "{{ $labels.kind }} canaries of {{ $labels.region }} are failing"),
        alert("RegionalStorePaused", "max by (source, target) (regionalstore_replication_paused) == 1",
              "regional store replication {{ $labels.source }} -> {{ $labels.target }} is paused"),
        alert("RegionalStoreFailing", "min by (source, target) (regionalstore_replication_connected) == 0 or "
              "sum by (source, target) (increase(regionalstore_replication_errors_total[1m])) > 0",
              "regional store replication {{ $labels.source }} -> {{ $labels.target }} is failing"),
        alert("RunbookWaitingForApproval", "regionctl_runbook_waiting_for_approval == 1",
              "runbook {{ $labels.runbook }} ({{ $labels.execution }}) waits for approval",
              hold=f"{metrics.approval_wait_s}s"),
    ]}]}


def process_spec(topo: Topology) -> ProcessSpec | None:
    """Prometheus on the global plane, its files written first (None: no binary, see ``unavailable``)."""
    found = binary(topo.settings)
    if found is None:
        return None
    directory = topo.paths.prometheus
    (directory / "data").mkdir(parents=True, exist_ok=True)
    port = topo.port(GLOBAL_PLANE, NAME)
    text = yaml.safe_dump(config(topo.settings, directory), sort_keys=False).replace("{port}", str(port))
    _write(directory / CONFIG, text)
    _write(directory / RULES, yaml.safe_dump(rules(topo.settings.metrics), sort_keys=False))
    if not (directory / TARGETS).exists():
        _write(directory / TARGETS, "[]")
    base = f"http://{GLOBAL_HOST}:{port}"
    return ProcessSpec(
        name=NAME, region=GLOBAL_PLANE, health_url=f"{base}/-/ready", start_timeout_s=60.0,
        argv=(found, f"--config.file={directory / CONFIG}", f"--storage.tsdb.path={directory / 'data'}",
              f"--storage.tsdb.retention.time={topo.settings.metrics.retention_hours}h",
              f"--web.listen-address={GLOBAL_HOST}:{port}", "--log.level=warn"))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
