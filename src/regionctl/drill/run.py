"""One drill, in the order an operator lives it: load on (shoppers through the global entry, the ledger client in
each region and database), a fault at a moment the seed picks, the runbook started and watched as an operator
does, the fault reverted, optionally a failback, load off; then the evidence is collected and ``check``
gives the verdict. Every phase prints a line as it goes (``progress``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regionctl.config import LensSettings
from regionctl.drill import check as C
from regionctl.drill.faults import Injected, check_fault, inject
from regionctl.drill.load import CREATE, LedgerClient, json_lines, read_ledger
from regionctl.errors import InputError, OperationTimeout, RegionctlError
from regionctl.globaldb.endpoints import writer_dsn
from regionctl.globaldb.service import GlobalDatabases
from regionctl.runbooks.client import RunbookClient
from regionctl.runbooks.launch import engine_url
from regionctl.runbooks.wiring import entry_url
from regionctl.runtime.topology import Topology
from regionctl.shop.loadgen import read_acks, run_load

FINISHED = ("succeeded", "failed", "cancelled")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DrillSpec:
    fault: str = "partition"
    runbook: str = "RegionFailover"
    mode: str = "ungraceful"
    region: str | None = None  # the region left; default: where the orders writer is
    failback: bool = True
    load_rate: float = 4.0  # purchases per second; each ledger client runs at the same rate
    duration_s: float = 20.0  # load before the fault and after the runbook, together
    seed: int | None = None
    approver: str | None = None  # an operator who approves the replay (its token: $REGIONCTL_APPROVER_TOKEN[_FILE])

    def checked(self) -> DrillSpec:
        check_fault(self.fault)
        if self.mode not in ("graceful", "ungraceful"):
            raise InputError(f"--mode {self.mode!r}: graceful or ungraceful")
        if not 0 < self.load_rate <= 200:
            raise InputError(f"--load-rate {self.load_rate:g}: between 0 and 200 per second")
        if not 4 <= self.duration_s <= 3600:
            raise InputError(f"--duration {self.duration_s:g}: between 4 and 3600 seconds")
        return self


@dataclass
class Timeline:
    """Epoch seconds of each phase (None: did not happen)."""

    load_started: float = 0.0
    fault_at: float | None = None
    runbook_started: float | None = None
    runbook_ended: float | None = None
    reverted_at: float | None = None
    failback_started: float | None = None
    failback_ended: float | None = None
    load_stopped: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


class Drill:
    def __init__(self, topo: Topology, gdbs: GlobalDatabases, spec: DrillSpec, directory: Path, drill_id: str,
                 progress: Progress = lambda _: None) -> None:
        self.topo, self.gdbs, self.spec, self.dir, self.id = topo, gdbs, spec.checked(), directory, drill_id
        self.progress = progress
        self.rng = random.Random(spec.seed)
        self.region = spec.region or gdbs.state("orders").writer
        topo.settings.require_region(self.region)
        self.to_region = topo.settings.other_region(self.region)
        self.time = Timeline()
        self._stop_shoppers = threading.Event()
        self.shopper_errors: dict[str, int] = {}
        self.ledger: list[LedgerClient] = []
        self.runbook_view: dict[str, Any] | None = None
        self.failback_view: dict[str, Any] | None = None
        self.reports: dict[str, str] = {}  # database -> the report of what this drill's failover lost
        self.problems: list[str] = []
        self.approver_token = approver_token() if spec.approver else None
        if spec.approver and self.approver_token is None:
            raise InputError(f"--approver {spec.approver}: the drill approves the replay as that operator, so it "
                             f"needs its token in ${APPROVER_TOKEN_ENV} or the file ${APPROVER_TOKEN_ENV}_FILE names")
        self.lag_series: dict[str, list[list[float | None]]] = {}
        self._approved: set[str] = set()
        self._stop_lag = threading.Event()

    # --- the sequence -------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.dir.mkdir(parents=True, exist_ok=True)
        lag_before = self._prepare()
        shoppers = self._start_load()
        sampler = threading.Thread(target=self._sample_lag, name="drill-lag", daemon=True)
        sampler.start()
        injected: Injected | None = None
        try:
            warmup = self.spec.duration_s / 2 * self.rng.uniform(0.6, 1.0)  # the fault's moment: seeded
            self.progress(f"load on ({self.spec.load_rate:g}/s shoppers + ledger clients); fault in {warmup:.1f} s")
            time.sleep(warmup)
            lag_before = self._lag() or lag_before
            self.time.fault_at = time.time()
            injected = inject(self.topo, self.spec.fault, self.region)
            self.progress(f"fault: {injected.description}")
            params = {"region": self.region, "mode": self.spec.mode}
            if self.spec.approver:
                params["approver"] = self.spec.approver
            self.runbook_view = self._run_runbook(self.spec.runbook, params, "runbook")
            self.time.runbook_started = self.runbook_view.get("started_at")
            self.time.runbook_ended = self.runbook_view.get("ended_at")
            self._revert(injected)
            injected = None
            self._report_pending()
            after = max(2.0, self.spec.duration_s - warmup)
            self.progress(f"load after the runbook for {after:.1f} s")
            time.sleep(after)
            if self.spec.failback and self.runbook_view["status"] == "succeeded":
                self.time.failback_started = time.time()
                self.failback_view = self._run_runbook("Failback", {"region": self.region}, "failback")
                self.time.failback_ended = self.failback_view.get("ended_at")
                time.sleep(2.0)
        finally:
            if injected is not None:
                self._revert(injected)
            self._stop_load(shoppers)
            self._stop_lag.set()
            sampler.join(timeout=10)
        self.progress("collecting the evidence: writers and missing-transaction reports")
        evidence, reports = self._evidence()
        return self._record(evidence, reports, lag_before)

    # --- parts --------------------------------------------------------------------------------------------
    def _prepare(self) -> dict[str, Any]:
        for name in self.gdbs.names:
            cluster = self.gdbs.cluster(name)
            cluster.member(self.gdbs.state(name).writer).query(CREATE, dbname=name)
        return self._lag()

    def _sample_lag(self) -> None:
        """Each standby's lag once a second while the drill runs (None while it cannot be read): the timeline
        draws it."""
        while not self._stop_lag.wait(1.0):
            at = round(time.time() - self.time.load_started, 1)
            for name, lag in self._lag().items():
                self.lag_series.setdefault(name, []).append([at, lag.get("lag_bytes"), lag.get("lag_ms")])

    def _lag(self) -> dict[str, Any]:
        lag: dict[str, Any] = {}
        for name in self.gdbs.names:
            try:
                status = self.gdbs.status(name)
            except RegionctlError:
                continue
            for m in status.members:
                if m.role == "standby":
                    lag[name] = {"region": m.region, "lag_bytes": m.lag_bytes, "lag_ms": m.lag_ms}
        return lag

    def _start_load(self) -> threading.Thread:
        self.time.load_started = time.time()
        endpoint = entry_url(self.topo.settings)
        seed = self.rng.randrange(1 << 30)

        def shop() -> None:
            while not self._stop_shoppers.is_set():  # open-loop chunks, as tests/support/drills.py
                report = asyncio.run(run_load(endpoint, self.spec.load_rate, 2.0, self.dir / "orders.jsonl",
                                              timeout_s=20.0, seed=seed, error_log=self.dir / "errors.jsonl"))
                for kind, count in report.errors.items():
                    self.shopper_errors[kind] = self.shopper_errors.get(kind, 0) + count

        thread = threading.Thread(target=shop, name="drill-shoppers", daemon=True)
        thread.start()
        for name in self.gdbs.names:
            cluster = self.gdbs.cluster(name)
            for region in self.topo.settings.regions:
                client = LedgerClient(name, region, writer_dsn(cluster, region), self.id, self.spec.load_rate,
                                      self.dir / f"ledger-{name}-{region}.jsonl", self.rng.randrange(1 << 30))
                self.ledger.append(client.start())
        return thread

    def _stop_load(self, shoppers: threading.Thread) -> None:
        self._stop_shoppers.set()
        for client in self.ledger:
            client.stop()
        shoppers.join(timeout=60)
        self.time.load_stopped = time.time()

    def _revert(self, injected: Injected) -> None:
        try:
            injected.revert()
        except RegionctlError as exc:
            self.progress(f"could not revert {injected.kind}: {exc}")
        self.time.reverted_at = self.time.reverted_at or time.time()
        self.progress(f"fault reverted ({injected.kind})")

    def _report_pending(self) -> None:
        """What the runbook leaves to the operator when the old region could not be read (its reports pending):
        once the region answers again, the report of each database this drill failed over."""
        from regionctl.reconcile import service as reconcile

        failed_over = [name for name in self.gdbs.names if self._failed_over_here(name)]
        if not failed_over:
            return
        try:
            self._wait_members_back()
            for name in failed_over:
                self.progress(f"missing-transaction report of {name}")
                self.reports[name] = reconcile.report(self.topo, self.gdbs.network, name, self.region).id
        except RegionctlError as exc:  # the accounting below then shows what this leaves unreported
            self.problems.append(f"the missing-transaction report could not be built: {exc}")
            self.progress(self.problems[-1])

    def _promotion_figures(self) -> dict[str, Any]:
        """The floor a recovery is compared with: the bare promotion to first write of this drill's failovers
        (the slower database), and how long the promotion waited for the old writer's lease."""
        details = [r.details for name in self.gdbs.names if self._failed_over_here(name)
                   for r in [self.gdbs.state(name).last_failover_from(self.region)] if r is not None]
        if not details:
            return {}
        return {"promote_floor_s": round(max(d.get("promote_to_first_write_ms", 0) for d in details) / 1000, 3),
                "lease_wait_s": max(d.get("lease_wait_s", 0) or 0 for d in details)}

    def _failed_over_here(self, database: str) -> bool:
        record = self.gdbs.state(database).last_failover_from(self.region)
        return record is not None and self.time.fault_at is not None and record.started_at >= self.time.fault_at

    def _run_runbook(self, runbook: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        client = RunbookClient.for_settings(self.topo.settings)
        try:
            started = client.start(runbook, params)
            execution_id = started["id"]
            self.progress(f"{what}: {runbook} {execution_id} started")
            deadline = time.monotonic() + 600
            seen: set[str] = set()
            while True:
                view = dict(client.execution(execution_id))
                for step in view["steps"]:
                    if step["status"] == "succeeded" and step["step"] not in seen:
                        seen.add(step["step"])
                        self.time.steps.append({"what": what, "step": step["step"], "started_at": step["started_at"],
                                                "ended_at": step["ended_at"]})
                        self.progress(f"  {step['step']} done in {step['duration_s']}s")
                if view["waiting"] and self.approver_token is not None and execution_id not in self._approved:
                    self._approved.add(execution_id)  # once: the engine may still show the step waiting a moment
                    self._approve(execution_id)
                if view["status"] in FINISHED:
                    self.progress(f"{what}: {view['status']}"
                                  + (f", recovery {view['recovery_s']:.3f} s" if view.get("recovery_s") else ""))
                    return view
                if time.monotonic() > deadline:
                    raise OperationTimeout(f"{runbook} {execution_id} did not finish within 600 s")
                time.sleep(0.3)
        finally:
            client.close()

    def _approve(self, execution_id: str) -> None:
        """As the approver operator (never the drill's caller: the replay's approval keeps the two-person rule)."""
        assert self.approver_token is not None
        url = engine_url(self.topo.settings)
        assert url is not None  # the runbook it approves was started through it
        approver = RunbookClient(url, self.approver_token)
        try:
            approver.decide(execution_id, True, f"drill {self.id}: replay what was lost", None)
            self.progress(f"  replay approved by {self.spec.approver}")
        except RegionctlError as exc:
            self.problems.append(f"the approval by {self.spec.approver} was refused: {exc}")
            self.approver_token = None
        finally:
            approver.close()

    def _wait_members_back(self, timeout: float = 180.0) -> None:
        """Failback needs the old region's agent reachable again (after a kill, the region restarting); its fenced
        writers stay stopped until Failback rebuilds them."""
        self.progress(f"waiting for {self.region}'s databases to answer before the failback")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if all(self.gdbs.status(n).member(self.region).role != "unreachable"
                       for n in self.gdbs.names):
                    return
            except RegionctlError:
                pass
            time.sleep(1.0)
        raise OperationTimeout(f"{self.region}'s databases did not answer within {timeout:.0f} s")

    def _evidence(self) -> tuple[C.Evidence, list[dict[str, Any]]]:
        return collect(self.topo, self.gdbs, self.dir, self.id, self._report_ids(), _replayed(self.runbook_view or {}))

    def _report_ids(self) -> list[str]:
        return sorted(set(self.reports.values()))

    def _record(self, evidence: C.Evidence, reports: list[dict[str, Any]], lag_before: dict[str, Any]
                ) -> dict[str, Any]:
        verdict = C.check(evidence)
        figures = drill_figures(verdict, self.time, self.runbook_view, reports)
        figures |= self._promotion_figures()
        problems = ([verdict.reason] if not verdict.passed else []) + self.problems
        if self.runbook_view is not None and self.runbook_view["status"] != "succeeded":
            problems.append(f"{self.spec.runbook} {self.runbook_view['status']}: {self.runbook_view.get('error')}")
        if self.failback_view is not None and self.failback_view["status"] != "succeeded":
            problems.append(f"Failback {self.failback_view['status']}: {self.failback_view.get('error')}")
        if figures.get("failback_lost", 0):
            problems.append(f"Failback lost {figures['failback_lost']} acknowledged writes (its RPO must be 0)")
        passed = not problems
        return {
            "id": self.id, "created_at": self.time.load_started, "spec": dataclasses.asdict(self.spec),
            "region": self.region, "to_region": self.to_region, "verdict": "PASS" if passed else "FAIL",
            "reason": verdict.reason if passed else "; ".join(problems), "check": verdict.as_dict(),
            "figures": figures, "lag_before": lag_before, "timeline": dataclasses.asdict(self.time),
            "runbook": _execution_brief(self.runbook_view), "failback": _execution_brief(self.failback_view),
            "reports": [r["id"] for r in reports], "replayed": sorted(_replayed(self.runbook_view or {})),
            "errors": {"shoppers": self.shopper_errors,
                       "ledger": {f"{c.database}/{c.region}": c.errors for c in self.ledger if c.errors}},
            "series": ack_series(verdict, self.time.load_started),
            "error_series": error_series(read_errors(self.dir / "errors.jsonl"), self.time.load_started),
            "lag_series": self.lag_series,
        }


APPROVER_TOKEN_ENV = "REGIONCTL_APPROVER_TOKEN"


def approver_token() -> str | None:
    """The approver operator's token: ``$REGIONCTL_APPROVER_TOKEN``, else the file ``..._FILE`` names."""
    given = os.environ.get(APPROVER_TOKEN_ENV, "").strip()
    if given:
        return given
    file = os.environ.get(f"{APPROVER_TOKEN_ENV}_FILE", "").strip()
    if not file or not Path(file).exists():
        return None
    return Path(file).read_text().strip() or None


def collect(topo: Topology, gdbs: GlobalDatabases, directory: Path, drill_id: str, report_ids: list[str],
            replayed_tx: set[str]) -> tuple[C.Evidence, list[dict[str, Any]]]:
    """The evidence as it stands now: the drill's acknowledgements (its logs in ``directory``), the writers'
    contents, and the reports (``regionctl drill check`` collects it again, long after the drill)."""
    from regionctl.reconcile import service as reconcile

    orders = tuple(C.OrderAck(a.order_id, a.ts, a.region) for a in read_acks(directory / "orders.jsonl"))
    ledger = tuple(ack for log in sorted(directory.glob("ledger-*.jsonl")) for ack in read_ledger(log))
    lens = order_lens(topo)
    orders_db = gdbs.cluster(lens.database).member(gdbs.state(lens.database).writer)
    on_writer = {str(r["key"]) for r in orders_db.query(
        f'select "{lens.root_key}"::text as key from {lens.root_table}', dbname=lens.database)}
    rows: dict[str, dict[str, int]] = {}
    for name in gdbs.names:
        member = gdbs.cluster(name).member(gdbs.state(name).writer)
        rows[name] = {str(r["id"]): int(r["version"]) for r in member.query(
            f"select id, version from {C.LEDGER_TABLE} where id like %s", (f"{drill_id}-%",), dbname=name)}
    reports = [dataclasses.asdict(reconcile.show(topo, report_id)) for report_id in report_ids]
    reported_orders = {str(doc.get(lens.root_key)) for r in reports for doc in r["lenses"].get(lens.name, [])}
    replayed_orders = {str(doc.get(lens.root_key)) for r in reports for doc in r["lenses"].get(lens.name, [])
                       if set(doc.get("transactions") or ()) & replayed_tx}
    replayed = [{**r, "transactions": [t for t in r["transactions"] if t["id"] in replayed_tx]} for r in reports]
    evidence = C.Evidence(
        orders=orders, ledger=ledger, orders_on_writer=frozenset(on_writer), ledger_on_writer=rows,
        reported_orders=frozenset(reported_orders),
        reported_ledger=frozenset(c for r in reports for c in C.ledger_changes(r)),
        replayed_orders=frozenset(replayed_orders),
        replayed_ledger=frozenset(c for r in replayed for c in C.ledger_changes(r)))
    return evidence, reports


def order_lens(topo: Topology) -> LensSettings:
    """How the shop's acknowledged orders are found: the workload's first reconciliation lens (its documents'
    table and key), so the drill knows the shop only through settings."""
    lenses = topo.settings.workload.lenses
    if not lenses:
        raise InputError("the workload has no reconciliation lens (workload.lenses): a drill cannot find its orders")
    return lenses[0]


def recheck(topo: Topology, gdbs: GlobalDatabases, record: dict[str, Any], directory: Path) -> C.Verdict:
    """The stored drill's acknowledgements against the deployment as it is now."""
    evidence, _ = collect(topo, gdbs, directory, record["id"], record["reports"], set(record.get("replayed", [])))
    return C.check(evidence)


def _replayed(view: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for step in view.get("steps", []):
        for run in [step, *step["parallel"]]:
            if run["step"].startswith("Replay"):
                found.update(str(t) for t in (run.get("outputs") or {}).get("applied") or [])
    return found


def _execution_brief(view: dict[str, Any] | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {k: view.get(k) for k in ("id", "runbook", "status", "started_at", "ended_at", "duration_s", "recovery_s",
                                     "error")}


def drill_figures(verdict: C.Verdict, t: Timeline, runbook: dict[str, Any] | None,
                  reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Recovery from the fault and from the runbook's start, the clients' write outage, rates per phase, the
    reports' lost window, the failback's losses."""
    lost = verdict.lost_at
    surviving = sorted(c.at for c in verdict.classified if not c.lost)
    figures: dict[str, Any] = {"acknowledged": len(verdict.classified), "lost": len(lost)}
    recovered_at = (runbook or {}).get("recovery", {}) or {}
    if recovered_at.get("recovered_at") and t.fault_at:
        figures["recovery_from_fault_s"] = round(recovered_at["recovered_at"] - t.fault_at, 3)
        figures["recovery_s"] = (runbook or {}).get("recovery_s")
    if t.fault_at and t.runbook_ended:
        window = [at for at in surviving if t.fault_at <= at <= t.runbook_ended + 30]
        gaps = [(b - a, b) for a, b in zip([t.fault_at, *window], window, strict=False)]
        if gaps:
            gap, resumed = max(gaps)
            figures["write_outage_s"] = round(gap, 3)
            if t.runbook_started:
                figures["first_surviving_write_after_runbook_start_s"] = round(resumed - t.runbook_started, 3)
    phases = {"before": (t.load_started, t.fault_at), "during": (t.fault_at, t.runbook_ended),
              "after": (t.runbook_ended, t.failback_started or t.load_stopped)}
    rates = {}
    for phase, (start, end) in phases.items():
        if start and end and end > start:
            rates[phase] = round(sum(start <= at < end for at in surviving) / (end - start), 2)
    figures["surviving_writes_per_s"] = rates
    figures["lost_window"] = [r.get("window") for r in reports]
    if t.failback_started:
        figures["failback_lost"] = sum(at >= t.failback_started for at in lost)
    return figures


def ack_series(verdict: C.Verdict, start: float) -> dict[str, dict[str, list[int]]]:
    """Acknowledgements per second since ``start``, per region: surviving and lost (for the timeline plot)."""
    series: dict[str, dict[str, list[int]]] = {}
    for c in verdict.classified:
        second = max(0, int(c.at - start))
        bucket = series.setdefault(c.region, {"surviving": [], "lost": []})["lost" if c.lost else "surviving"]
        bucket.extend([0] * (second + 1 - len(bucket)))
        bucket[second] += 1
    return series


def read_errors(path: Path) -> list[dict[str, Any]]:
    """The shoppers' failed purchases (started, ts, kind)."""
    return list(json_lines(path))


def error_series(errors: list[dict[str, Any]], start: float) -> list[int]:
    """Failed purchases per second since ``start``, by when they failed (for the timeline plot)."""
    series: list[int] = []
    for error in errors:
        second = max(0, int(error["ts"] - start))
        series.extend([0] * (second + 1 - len(series)))
        series[second] += 1
    return series
