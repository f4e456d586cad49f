"""One read of the whole deployment for the operations console: routing, databases, regional store, canaries,
runbooks, and what among them needs a person's attention.

Each part is read on its own and may fail on its own (a killed region, a stopped control API): the overview then
says which part is missing and why, and shows the rest. ``attention`` is a pure function of the parts, so what
raises a flag is unit-tested without a deployment. The reference had no alarms at all; these are the console's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from regionctl.config import Settings
from regionctl.errors import ConfigError
from regionctl.jsonable import to_jsonable
from regionctl.observe.launch import canary_url
from regionctl.runtime.topology import Topology

SECTIONS = ("routing", "databases", "store", "canaries", "runbooks")
AT_RISK_TTL_S = 5.0


class Sources(Protocol):
    """Where the overview reads from; each call returns plain JSON data or raises."""

    def routing(self) -> Any: ...
    def databases(self) -> Any: ...
    def store(self) -> Any: ...
    def canaries(self, region: str) -> Any: ...
    def runbooks(self) -> Any: ...
    def agents(self) -> Any: ...
    def drills(self) -> Any: ...
    def reports(self) -> Any: ...
    def alerts(self) -> Any: ...


@dataclass(frozen=True)
class Part:
    ok: bool
    data: Any = None
    error: str | None = None

    def json(self) -> dict[str, Any]:
        return {"ok": self.ok, "data": self.data, "error": self.error}


def read_part(read: Callable[[], Any]) -> Part:
    """Run one read; any failure becomes the part's error (the class name when the message is empty): one part
    that cannot be read must never hide the others."""
    try:
        return Part(True, read())
    except Exception as exc:  # noqa: BLE001 - reported in the part, and flagged by attention()
        return Part(False, error=str(exc) or type(exc).__name__)


def collect(sources: Sources, regions: tuple[str, ...], now: Callable[[], float] = time.time) -> dict[str, Any]:
    """Every part read in parallel (a slow part does not hold up the others), then the attention list."""
    reads: dict[str, Callable[[], Any]] = {
        "routing": sources.routing, "databases": sources.databases, "store": sources.store,
        "runbooks": sources.runbooks, "agents": sources.agents, "drills": sources.drills,
        "reports": sources.reports, "alerts": sources.alerts,
        **{f"canaries/{r}": (lambda region=r: sources.canaries(region)) for r in regions},  # type: ignore[misc]
    }
    with ThreadPoolExecutor(max_workers=len(reads)) as pool:
        futures = {name: pool.submit(read_part, read) for name, read in reads.items()}
        parts = {name: future.result() for name, future in futures.items()}
    body: dict[str, Any] = {name: parts[name].json() for name in reads if not name.startswith("canaries/")}
    body["canaries"] = {r: parts[f"canaries/{r}"].json() for r in regions}
    body["regions"] = list(regions)
    body["at"] = now()
    try:
        body["attention"] = attention(parts, regions)
    except Exception as exc:  # noqa: BLE001 - an unexpected shape of one part must not hide the whole overview
        body["attention"] = [{"severity": "critical", "what": f"attention flags cannot be computed: {exc!r}"}]
    return body


def attention(parts: Mapping[str, Part], regions: tuple[str, ...]) -> list[dict[str, str]]:
    """What a person should look at now, most severe first: ``critical`` (users or data affected) or ``warning``."""
    flags: list[tuple[str, str]] = []
    for name in ("routing", "databases", "store", "runbooks"):
        if not parts[name].ok:
            flags.append(("critical" if name in ("routing", "databases") else "warning",
                          f"{name}: cannot be read ({parts[name].error})"))
    if parts["routing"].ok:
        routable = [r for r in parts["routing"].data.get("regions", []) if r.get("routable")]
        if not routable:
            flags.append(("critical", "no region receives traffic"))
        for region in parts["routing"].data.get("regions", []):
            if not region.get("routable"):
                flags.append(("warning", f"{region['region']} receives no traffic: {region.get('reason', '')}"))
            elif region.get("degraded"):
                flags.append(("warning", f"{region['region']} is degraded: {region.get('reason', '')}"))
    agents = parts.get("agents")
    if agents is not None and agents.ok:
        for agent in agents.data:
            if not agent.get("reachable"):
                flags.append(("critical", f"{agent['region']} is unreachable from the global plane (isolated or "
                                          "down): its databases' state is unknown, not stopped"))
            for database, lease in (agent.get("leases") or {}).items():
                if lease.get("held_since"):
                    flags.append(("critical", f"{database}: commits held back in {agent['region']} since "
                                              f"{time.strftime('%H:%M:%S', time.gmtime(lease['held_since']))} UTC "
                                              "(bounded: the standby stopped confirming)"))
    if parts["databases"].ok:
        for db in parts["databases"].data:
            for problem in db.get("problems", []):
                flags.append(("critical", f"database {db['name']}: {problem}"))
    if parts["store"].ok:
        for problem in parts["store"].data.get("problems", []):
            flags.append(("warning", f"regional store: {problem}"))
        for direction in parts["store"].data.get("directions", []):
            if direction.get("paused"):
                flags.append(("warning", f"regional store {direction['source']} -> {direction['target']} is paused"))
            for problem in [*direction.get("problems", []), *filter(None, [direction.get("replicator_error")])]:
                flags.append(("warning", f"regional store {direction['source']} -> {direction['target']}: {problem}"))
    for region in regions:
        part = parts[f"canaries/{region}"]
        if not part.ok:
            flags.append(("warning", f"canaries of {region} cannot be read ({part.error})"))
            continue
        failing = [c["name"] for c in part.data.get("canaries", []) if c.get("state") == "fail"]
        if failing:
            flags.append(("warning", f"{region}: {len(failing)} canaries failing ({', '.join(failing)})"))
    if parts["runbooks"].ok:
        for execution in parts["runbooks"].data:
            waiting = execution.get("waiting_for")
            if waiting:
                approvers = ", ".join(waiting.get("approvers", ())) or "an approver"
                flags.append(("warning", f"runbook {execution['runbook']} ({execution['id']}) waits at step "
                                         f"{execution.get('current_step')} for approval by {approvers}"))
            elif execution.get("status") == "failed":
                flags.append(("warning", f"runbook {execution['runbook']} ({execution['id']}) failed: "
                                         f"{execution.get('error') or 'see its history'}"))
    drills = parts.get("drills")
    if drills is not None and drills.ok and drills.data and drills.data[0].get("verdict") != "PASS":
        latest = drills.data[0]
        flags.append(("warning", f"the latest drill {latest['id']} ({latest['fault']}) ended {latest['verdict']}: "
                                 f"{latest.get('reason', '')}"))
    reports = parts.get("reports")
    if reports is not None and reports.ok:
        for report in reports.data:
            if report.get("lost_transactions") and not report.get("replays"):
                flags.append(("warning", _unreplayed(report)))
    order = {"critical": 0, "warning": 1}
    return [{"severity": s, "what": w} for s, w in sorted(flags, key=lambda f: order[f[0]])]


def _unreplayed(report: dict[str, Any]) -> str:
    """A report of lost transactions nobody has replayed yet: the customers' writes wait for an approver."""
    proposed = report.get("resolutions") or {}
    merged = sum(n for outcome, n in proposed.items() if outcome != "refused")
    detail = f", {merged} resolvable by the merge policies" if merged else ""
    return (f"{report['database']}: report {report['report_id']} lists {report['lost_transactions']} lost "
            f"transactions ({report.get('conflicts', 0)} conflicts{detail}), not replayed yet")


class LiveSources:
    """The sources of a running local deployment, found through its port registry.

    Clients are made once and kept: an HTTP client loads the CA bundle when it is made (about 70 ms of CPU each,
    measured), which made every overview cost ~300 ms of CPU for nothing; connections are kept alive too.
    """

    def __init__(self, settings: Settings, runbooks_limit: int = 8, timeout_s: float = 2.0) -> None:
        self.settings = settings
        self.topo = Topology(settings)
        self.runbooks_limit = runbooks_limit
        self.timeout_s = timeout_s
        self._http = httpx.Client(timeout=timeout_s, trust_env=False)
        self._routing: Any = None
        self._runbooks: Any = None
        self._history: Any = None
        self._gdbs: Any = None
        self._risk: dict[str, tuple[float, dict[str, Any]]] = {}

    def routing(self) -> Any:
        from regionctl.routing.client import ControlClient, api_url

        if self._routing is None:  # made on first success: the API may not be registered yet
            self._routing = ControlClient(api_url(self.settings), timeout_s=self.timeout_s)
        return self._routing.status()

    def _databases(self) -> Any:
        from regionctl.globaldb.service import GlobalDatabases
        from regionctl.runtime.network import deployment_network

        if self._gdbs is None:
            self._gdbs = GlobalDatabases(self.topo, deployment_network(self.topo))
        return self._gdbs

    def databases(self) -> Any:
        gdbs = self._databases()
        return [{**to_jsonable(gdbs.status(name)), "at_risk": self._at_risk(name)} for name in gdbs.names]

    def _at_risk(self, name: str) -> dict[str, Any]:
        """What a failover of ``name`` right now would lose, in numbers (the transactions themselves hold customer
        data and stay behind the token: `regionctl db at-risk`); read at most every ``AT_RISK_TTL_S``."""
        from regionctl.errors import RegionctlError
        from regionctl.reconcile.service import at_risk

        cached = self._risk.get(name)
        if cached is not None and time.monotonic() - cached[0] < AT_RISK_TTL_S:
            return cached[1]
        try:
            risk = at_risk(self.topo, self._databases().network, name)
            summary: dict[str, Any] = {"count": risk.count, "window_s": risk.window_s,
                                       "window_bytes": risk.window_bytes}
        except RegionctlError as exc:
            summary = {"count": None, "reason": str(exc)}
        self._risk[name] = (time.monotonic(), summary)
        return summary

    def agents(self) -> Any:
        agents = self._databases().agents
        return [agents.view(region) for region in self.settings.regions]

    def store(self) -> Any:
        from regionctl.regionalstore import endpoints, status

        a, b = self.settings.regions
        return to_jsonable(status.replication_status(endpoints.dsn(self.settings, a), endpoints.dsn(self.settings, b)))

    def canaries(self, region: str) -> Any:
        url = canary_url(self.topo.ports, region)
        if url is None and not self.settings.workload.launcher:
            return {"region": region, "canaries": [], "counts": {}, "note": "no workload runs, so no canaries"}
        if url is None:
            raise KeyError(f"no canary runner is registered for {region}")
        response = self._http.get(f"{url}/canaries")
        response.raise_for_status()
        return response.json()

    def drills(self) -> Any:
        from regionctl.drill import records

        return records.listing(self.topo, limit=5)

    def reports(self) -> Any:
        """The latest reconciliation reports, newest first (summaries: counts, no customer rows)."""
        from regionctl.reconcile.store import ReportStore

        return ReportStore(self.topo.paths.root).list()[::-1][:5]

    def history(self) -> Any:
        """The metrics history (Prometheus) with runbooks, drills and chaos experiments as annotations."""
        from regionctl.observe import prometheus
        from regionctl.observe.history import History, PrometheusReader, annotations_of

        if self._history is None:
            def marks() -> list[Any]:
                from regionctl.chaos import records

                executions = self._runbook_client().executions(limit=50) if self._engine_started() else []
                return annotations_of(executions, self.drills(), records.listing(self.topo))

            self._history = History(PrometheusReader(lambda: prometheus.url(self.topo.ports), self.timeout_s),
                                    marks, prometheus.unavailable(self.settings),
                                    float(self.settings.metrics.scrape_interval_s))
        return self._history

    def alerts(self) -> Any:
        return self.history().alerts()

    def drill_page(self, drill_id: str) -> str:
        from regionctl.drill import records

        return records.stored_page(self.topo, drill_id)

    def acting_targets(self) -> dict[str, Callable[[], str | None]]:
        """Where the console relays an operator's calls: the runbook API and the routing control API."""
        from regionctl.routing.client import api_url
        from regionctl.runbooks.launch import engine_url

        def routing() -> str | None:
            try:
                return api_url(self.settings)
            except ConfigError:
                return None

        return {"runbooks": lambda: engine_url(self.settings), "routing": routing}

    def _engine_started(self) -> bool:
        from regionctl.runbooks.launch import engine_url

        return engine_url(self.settings) is not None

    def _runbook_client(self) -> Any:
        from regionctl.runbooks.client import RunbookClient
        from regionctl.runbooks.launch import engine_url

        if self._runbooks is None:
            url = engine_url(self.settings)
            if url is None:
                raise KeyError("the runbook engine has not been started in this deployment")
            self._runbooks = RunbookClient(url, token=None, timeout=self.timeout_s)  # reads need no credential
        return self._runbooks

    def runbooks(self) -> Any:
        return self._runbook_client().executions(limit=self.runbooks_limit)

    def execution_and_events(self, execution_id: str) -> tuple[Any, Any]:
        client = self._runbook_client()
        return client.execution(execution_id), client.history(execution_id)
