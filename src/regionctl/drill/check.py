"""The drill's verdict, from evidence alone: what clients were told was committed (acks), what the writer holds
now, what the missing-transaction reports list, and what replay applied. Pure, so it is tested with evidence
built to fail.

Two kinds of acknowledgement:

- an order the shop acknowledged (``OrderAck``): present if the writer holds its id, reported if a report's
  orders lens lists it;
- a ledger operation of the drill's own SQL client (``LedgerAck``): an insert, update or delete of one row of
  ``regionctl_drill`` in a global database, each with the row version it produced (a delete produces none).
  One client owns a row and changes it one acknowledged step at a time, so the row's version on the writer
  says which of its steps survived: those up to that version. A row that is gone survived its acknowledged
  delete; the steps before it are then counted present (the net state is right) unless a report lists them.
  A delete of a row that is gone is lost only if a report lists it (its insert was lost too): so a report that
  wrongly lists such a delete cannot be caught, while one that wrongly lists any other step can.

Every acknowledgement lands in exactly one class: ``present``, ``reported`` (lost, listed in a report),
``replayed`` (lost, listed, and applied again by replay) or ``unreported`` (lost without a trace: the failure
this exists to find). A reported write that the writer holds although replay did not apply it is a second
failure (``reported_present``): the report claimed a loss that did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

INSERT, UPDATE, DELETE = "insert", "update", "delete"
LEDGER_TABLE = "regionctl_drill"


@dataclass(frozen=True)
class OrderAck:
    order_id: str
    at: float
    region: str


@dataclass(frozen=True)
class LedgerAck:
    database: str
    row: str
    op: str
    version: int | None  # the version the op left (None: a delete)
    at: float
    region: str

    @property
    def name(self) -> str:
        return f"{self.database}/{self.row}@{self.op}" + ("" if self.version is None else f"v{self.version}")


@dataclass(frozen=True)
class LedgerChange:
    """A lost ledger change as a report lists it (the row, the version it wrote; None for a delete)."""

    database: str
    row: str
    version: int | None


@dataclass(frozen=True)
class Evidence:
    orders: tuple[OrderAck, ...]
    ledger: tuple[LedgerAck, ...]
    orders_on_writer: frozenset[str]
    ledger_on_writer: Mapping[str, Mapping[str, int]]  # database -> row -> version
    reported_orders: frozenset[str]
    reported_ledger: frozenset[LedgerChange]
    replayed_orders: frozenset[str] = frozenset()
    replayed_ledger: frozenset[LedgerChange] = frozenset()


@dataclass(frozen=True)
class Classified:
    """One acknowledgement, its class, and when and where it was acknowledged."""

    kind: str
    at: float
    region: str

    @property
    def lost(self) -> bool:
        return self.kind in LOST


@dataclass
class Verdict:
    passed: bool
    reason: str
    counts: dict[str, int]
    unreported: list[str] = field(default_factory=list)
    reported_present: list[str] = field(default_factory=list)
    classified: list[Classified] = field(default_factory=list)  # every acknowledgement, in evidence order

    @property
    def lost_at(self) -> list[float]:
        """When each lost write was acknowledged."""
        return sorted(c.at for c in self.classified if c.lost)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": "PASS" if self.passed else "FAIL", "reason": self.reason, "counts": self.counts,
                "unreported": self.unreported[:50], "reported_present": self.reported_present[:50]}


CLASSES = ("present", "reported", "replayed", "unreported", "reported_present")
LOST = ("reported", "replayed", "unreported")


def check(evidence: Evidence) -> Verdict:
    deleted = {(a.database, a.row) for a in evidence.ledger if a.op == DELETE}
    found: list[tuple[str, str, Classified]] = []  # (label, how it was acknowledged, its class)
    for order in evidence.orders:
        kind = _classify(order.order_id in evidence.orders_on_writer, order.order_id in evidence.reported_orders,
                         order.order_id in evidence.replayed_orders)
        found.append((f"order {order.order_id}", order.region, Classified(kind, order.at, order.region)))
    for ack in evidence.ledger:
        change = LedgerChange(ack.database, ack.row, ack.version)
        present = _ledger_present(ack, evidence.ledger_on_writer.get(ack.database, {}), evidence.reported_ledger,
                                  evidence.replayed_ledger, deleted)
        kind = _classify(present, change in evidence.reported_ledger, change in evidence.replayed_ledger)
        found.append((f"ledger {ack.name}", ack.region, Classified(kind, ack.at, ack.region)))
    counts = dict.fromkeys(CLASSES, 0)
    for _, _, c in found:
        counts[c.kind] += 1
    counts["acknowledged"] = len(found)
    unreported = [f"{label} (acknowledged via {region})" for label, region, c in found if c.kind == "unreported"]
    reported_present = [label for label, _, c in found if c.kind == "reported_present"]
    problems = []
    if unreported:
        problems.append(f"{len(unreported)} acknowledged writes lost without a trace (first: {unreported[0]})")
    if reported_present:
        problems.append(f"{len(reported_present)} writes reported lost but on the writer (first: "
                        f"{reported_present[0]})")
    reason = "; ".join(problems) or (f"every one of {counts['acknowledged']} acknowledged writes is on the writer "
                                     f"or in a report ({counts['reported']} reported lost, {counts['replayed']} "
                                     "replayed)")
    return Verdict(not problems, reason, counts, unreported, reported_present, [c for _, _, c in found])


def _classify(present: bool, reported: bool, replayed: bool) -> str:
    if replayed and reported:
        return "replayed"
    if present and reported:
        return "reported_present"
    if present:
        return "present"
    return "reported" if reported else "unreported"


def _ledger_present(ack: LedgerAck, rows: Mapping[str, int], reported: frozenset[LedgerChange],
                    replayed: frozenset[LedgerChange], deleted: set[tuple[str, str]]) -> bool:
    version = rows.get(ack.row)
    if version is not None:
        return ack.version is not None and ack.version <= version
    delete = LedgerChange(ack.database, ack.row, None)
    if ack.op == DELETE:  # gone, as the delete left it: it survived unless a report lists it (a lost insert and
        return delete not in reported  # delete leave the row gone as well)
    # gone although this step wrote it: behind a delete that survived (or was lost and replayed, which removed
    # the row again), or lost with the insert before it
    return (ack.database, ack.row) in deleted and (delete not in reported or delete in replayed)


def ledger_changes(report: Mapping[str, Any]) -> set[LedgerChange]:
    """The ledger rows a missing-transaction report (its JSON) lists as changed by lost transactions."""
    found: set[LedgerChange] = set()
    database = str(report.get("database"))
    for tx in report.get("transactions", ()):
        for change in tx.get("changes", ()):
            if str(change.get("table", "")).rsplit(".", 1)[-1] != LEDGER_TABLE:
                continue
            key = change.get("key") or change.get("old_key") or {}
            row = key.get("id")
            if row is None:
                continue
            if change.get("kind") == DELETE:
                found.add(LedgerChange(database, str(row), None))
            else:
                version = (change.get("new") or {}).get("version")
                found.add(LedgerChange(database, str(row), None if version is None else int(version)))
    return found
