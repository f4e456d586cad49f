"""Everything the runbook actions need from the rest of the platform, as small protocols bound in one place.

The engine and its actions only talk to the world through a ``Ports`` bundle. ``providers.bind(settings)`` is the
single function that wires the real implementations: the local provider's (``wiring.bind``: globaldb, routing,
reconcile, the global-write probe) or the AWS provider's (``providers.aws``). Unit tests use the in-memory fakes
in ``fakes.py``.

Contract for every implementation: methods are synchronous (the engine calls them in a worker thread), raise
``regionctl.errors`` exceptions naming the problem, and are idempotent on their own: asked to do what is already
done, they report it and change nothing. The actions also read the world first (``status``/``states``) so a
resumed execution does not even ask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

ON, OFF = "On", "Off"


# --- snapshots of the world the actions decide on -------------------------------------------------------------


@dataclass(frozen=True)
class MemberStatus:
    """One region's member of a global database, as the actions need to see it."""

    region: str
    role: str  # "writer", "standby", "down" (unreachable / stopped), "diverged" (a former writer not rebuilt)
    timeline: int | None = None
    streaming: bool = False  # a standby receiving WAL from the current writer
    lag_bytes: int | None = None  # standby replay position behind the writer's current position
    lag_ms: float | None = None


@dataclass(frozen=True)
class DatabaseStatus:
    database: str
    writer: str | None  # region of the member accepting writes, None when there is none
    members: Mapping[str, MemberStatus]
    interrupted_to: str | None = None  # target region of a promotion that started and did not finish

    def member(self, region: str) -> MemberStatus:
        found = self.members.get(region)
        if found is None:
            return MemberStatus(region=region, role="down")
        return found


# --- the protocols --------------------------------------------------------------------------------------------


class Databases(Protocol):
    """The global databases (orders, catalog): ``globaldb`` binds this.

    Each operation returns what it did (any dataclass / dict; it lands in the step's result under ``details``).
    """

    def status(self, database: str) -> DatabaseStatus: ...

    def switchover(self, database: str, to_region: str) -> Any:
        """Planned, RPO 0: the target replays everything, is promoted, the old writer rejoins as a standby."""

    def failover(self, database: str, to_region: str) -> Any:
        """Unplanned, data loss allowed: fence the old writer (its agent, else the expiry of its lease), take
        the writer lease, promote the target."""

    def preserve(self, database: str, region: str) -> Any:
        """Keep the former writer's diverged copy (a named failover snapshot); idempotent per divergence."""

    def rebuild(self, database: str, region: str) -> Any:
        """pg_rewind (or re-clone) the former writer into a standby of the current writer; refuses without a
        preserved copy (invariant 2)."""

    def snapshot(self, database: str, region: str, label: str) -> Any:
        """A base backup named ``label``; returns the existing one when ``label`` exists."""

    def restore(self, database: str, snapshot: str, name: str, target_time: str | None,
                target_lsn: str | None) -> Any:
        """Point-in-time restore into a new instance ``name`` that never archives nor replicates; idempotent by
        ``name``."""


class Routing(Protocol):
    """The routing control panel: ``routing`` binds this."""

    def states(self) -> Mapping[str, str]:
        """Region -> "On" / "Off"."""

    def healthy(self, region: str) -> bool:
        """Control On and the region's endpoint health check passing (what the global entry uses)."""

    def set_states(self, changes: Mapping[str, str], overrides: Sequence[str], actor: str, reason: str) -> Any:
        """One transaction over the controls, checked against the safety rules; a refusal raises ConflictError
        naming the rule."""


class Reconciler(Protocol):
    """Lost-transaction capture and replay: ``reconcile`` binds this."""

    def report(self, database: str, region: str) -> Any:
        """Build (or return the existing) missing-transaction report for the former writer in ``region``;
        the result must carry ``report_id``."""

    def replay(self, report_id: str, approved_by: str) -> Any:
        """Apply what does not conflict, list what does; idempotent per report."""


@dataclass(frozen=True)
class ProbeResult:
    """What a probe saw: whether it passed, and for a write, which region served it and which region's database
    committed it. A write accepted by a writer that a failover then leaves behind is no recovery: it is lost."""

    ok: bool
    served_by: str | None = None
    writer: str | None = None
    detail: str = ""

    @classmethod
    def of(cls, value: ProbeResult | bool) -> ProbeResult:
        return value if isinstance(value, ProbeResult) else cls(bool(value))

    def misses(self, writer: str | None = None, not_served_by: str | None = None) -> str | None:
        """Why this result does not count (None: it does): failed, written elsewhere, or served by the region
        being left."""
        if not self.ok:
            return f"failed{': ' + self.detail if self.detail else ''}"
        if writer is not None and self.writer != writer:
            return f"written on {self.writer or 'an unnamed writer'}, not on {writer}"
        if not_served_by is not None and self.served_by == not_served_by:
            return f"served by {not_served_by}, the region being left"
        return None

    def describe(self) -> str:
        parts = [f"served by {self.served_by}" if self.served_by else "", f"written on {self.writer}" if self.writer
                 else ""]
        return ", ".join(p for p in parts if p)


Probe = Callable[[], "ProbeResult | bool"]
"""A check of the world, e.g. ``global_write``: an order accepted through the global entry point (and where)."""

Function = Callable[..., Any]
"""A function a ``python`` step calls by name: ``fn(**args)``; returns JSON-able data."""


@dataclass(frozen=True)
class Ports:
    databases: Databases
    routing: Routing
    reconciler: Reconciler
    probes: Mapping[str, Probe] = field(default_factory=dict)
    functions: Mapping[str, Function] = field(default_factory=dict)
