"""In-memory stand-ins for the ports, faithful enough to run the bundled runbooks in unit tests.

They keep score (promotions per database, routing changes) so tests can assert "exactly one promotion" and
enforce the invariants the real implementations enforce (no rebuild without a preserved copy; at least one
region On unless overridden).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from regionctl.errors import ConflictError, InputError, RetryLater
from regionctl.runbooks.ports import OFF, ON, DatabaseStatus, MemberStatus, Ports, ProbeResult


@dataclass
class _Db:
    writer: str | None
    members: dict[str, MemberStatus]
    promotions: int = 0


@dataclass
class FakeDatabases:
    regions: tuple[str, ...]
    databases: tuple[str, ...] = ("orders", "catalog")
    catch_up_polls: int = 0  # status calls a rebuilt standby needs before its lag reaches 0
    state: dict[str, _Db] = field(default_factory=dict)
    preserved: dict[tuple[str, str, int], str] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    restores: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[str, ...]] = field(default_factory=list)
    _lag_polls: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        primary, *others = self.regions
        for name in self.databases:
            members = {primary: MemberStatus(primary, "writer", 1)}
            members.update({r: MemberStatus(r, "standby", 1, True, 0, 0.0) for r in others})
            self.state[name] = _Db(primary, members)

    def _db(self, database: str) -> _Db:
        if database not in self.state:
            raise InputError(f"unknown database {database!r}")
        return self.state[database]

    def promotions(self, database: str) -> int:
        return self._db(database).promotions

    def lose_region(self, region: str) -> None:
        """The region's members stop answering (their data stays on disk)."""
        with self._lock:
            for db in self.state.values():
                member = db.members[region]
                db.members[region] = replace(member, role="down", streaming=False, lag_bytes=None)
                if db.writer == region:
                    db.writer = None

    def status(self, database: str) -> DatabaseStatus:
        with self._lock:
            db = self._db(database)
            for key, left in list(self._lag_polls.items()):
                if key[0] == database and left > 0:
                    self._lag_polls[key] = left - 1
                    member = db.members[key[1]]
                    db.members[key[1]] = replace(member, lag_bytes=0 if left == 1 else 8192 * (left - 1))
            return DatabaseStatus(database, db.writer, dict(db.members))

    def _promote(self, database: str, to_region: str, planned: bool) -> dict[str, Any]:
        db = self._db(database)
        if db.writer == to_region:
            return {"changed": False}
        target = db.members[to_region]
        if planned and (db.writer is None or not target.streaming or (target.lag_bytes or 0) > 0):
            raise ConflictError(f"switchover of {database} to {to_region}: the target is not caught up")
        old = db.writer
        timeline = max(m.timeline or 0 for m in db.members.values()) + 1
        db.members[to_region] = MemberStatus(to_region, "writer", timeline)
        if old is not None:
            db.members[old] = (MemberStatus(old, "standby", timeline, True, 0, 0.0) if planned
                               else replace(db.members[old], role="diverged", streaming=False))
        db.writer = to_region
        db.promotions += 1
        self.log.append(("switchover" if planned else "failover", database, to_region))
        return {"changed": True, "timeline": timeline, "old_writer": old}

    def switchover(self, database: str, to_region: str) -> Any:
        with self._lock:
            return self._promote(database, to_region, planned=True)

    def failover(self, database: str, to_region: str) -> Any:
        with self._lock:
            return self._promote(database, to_region, planned=False)

    def preserve(self, database: str, region: str) -> Any:
        with self._lock:
            member = self._db(database).members[region]
            key = (database, region, member.timeline or 0)
            if key not in self.preserved:
                self.preserved[key] = f"failover-{database}-{region}-tl{member.timeline}"
                self.log.append(("preserve", database, region))
            return {"snapshot": self.preserved[key]}

    def rebuild(self, database: str, region: str) -> Any:
        with self._lock:
            db = self._db(database)
            member = db.members[region]
            if member.role in ("diverged", "down") and (database, region, member.timeline or 0) not in self.preserved:
                raise ConflictError(f"rebuild of {database} in {region}: no preserved copy of its diverged data")
            writer_tl = db.members[db.writer].timeline if db.writer else None
            lag = 8192 * self.catch_up_polls if self.catch_up_polls else 0
            db.members[region] = MemberStatus(region, "standby", writer_tl, True, lag, 0.0)
            if self.catch_up_polls:
                self._lag_polls[(database, region)] = self.catch_up_polls
            self.log.append(("rebuild", database, region))
            return {"rebuilt": region}

    def snapshot(self, database: str, region: str, label: str) -> Any:
        with self._lock:
            self.snapshots.setdefault(label, {"database": database, "region": region})
            return {"label": label, **self.snapshots[label]}

    def restore(self, database: str, snapshot: str, name: str, target_time: str | None,
                target_lsn: str | None) -> Any:
        with self._lock:
            if snapshot not in self.snapshots:
                raise InputError(f"no snapshot {snapshot!r}")
            self.restores.setdefault(name, {"database": database, "snapshot": snapshot, "time": target_time,
                                            "lsn": target_lsn})
            return {"name": name, **self.restores[name]}


@dataclass
class FakeRouting:
    regions: tuple[str, ...]
    controls: dict[str, str] = field(default_factory=dict)
    unhealthy: set[str] = field(default_factory=set)
    changes: list[dict[str, Any]] = field(default_factory=list)
    wait_periods: list[float] = field(default_factory=list)  # each refuses one change for that many seconds

    def __post_init__(self) -> None:
        for region in self.regions:
            self.controls.setdefault(region, ON)

    def states(self) -> Mapping[str, str]:
        return dict(self.controls)

    def healthy(self, region: str) -> bool:
        return self.controls.get(region) == ON and region not in self.unhealthy

    def set_states(self, changes: Mapping[str, str], overrides: Sequence[str], actor: str, reason: str) -> Any:
        if self.wait_periods:
            left = self.wait_periods.pop(0)
            raise RetryLater(f"refused by rule 'at-least-one-region-on': its wait period is running ({left} s left)",
                             left)
        after = {**self.controls, **changes}
        if all(v == OFF for v in after.values()) and "AtLeastOneOn" not in overrides:
            raise ConflictError("refused by assertion rule AtLeastOneOn: no region would be On")
        before = dict(self.controls)
        self.controls.update(changes)
        self.changes.append({"before": before, "after": dict(self.controls), "actor": actor, "reason": reason})
        return {"before": before, "after": dict(self.controls)}


@dataclass
class FakeReconciler:
    """Reports shaped like ``reconcile.service``'s summary; ``lost`` sets how many transactions each one lists."""

    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    replays: dict[str, str] = field(default_factory=dict)
    lost: int = 0

    def report(self, database: str, region: str) -> Any:
        report_id = f"{database}-{region}-{len(self.reports) + 1}"
        for existing, body in self.reports.items():
            if body["database"] == database and body["former_writer"] == region:
                return {"report_id": existing, **body}
        self.reports[report_id] = {"database": database, "former_writer": region, "lost_transactions": self.lost}
        return {"report_id": report_id, **self.reports[report_id]}

    def replay(self, report_id: str, approved_by: str) -> Any:
        if report_id not in self.reports:
            raise InputError(f"no report {report_id!r}")
        first = report_id not in self.replays
        self.replays.setdefault(report_id, approved_by)
        lost = [f"{report_id}-tx{n}" for n in range(self.reports[report_id]["lost_transactions"])]
        return {"report_id": report_id, "approved_by": approved_by, "applied": lost if first else [],
                "already_applied": [] if first else lost, "refused": []}


def fake_ports(regions: tuple[str, ...], **probes: Any) -> Ports:
    """Ports over fresh fakes; ``global_write`` passes when some region is healthy and orders has a writer."""
    databases = FakeDatabases(regions)
    routing = FakeRouting(regions)

    def global_write() -> ProbeResult:
        writer = databases.state["orders"].writer
        serving = next((r for r in regions if routing.healthy(r)), None)
        return ProbeResult(writer is not None and serving is not None, served_by=serving, writer=writer)

    return Ports(databases=databases, routing=routing, reconciler=FakeReconciler(),
                 probes={"global_write": global_write, **probes}, functions={})


def bind(settings: Any) -> Ports:
    """``--bind regionctl.runbooks.fakes:bind``: run the engine against the fakes (demos, API tests)."""
    return fake_ports(tuple(settings.regions))
