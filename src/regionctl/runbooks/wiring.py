"""The real implementations behind the runbook ports: small adapters over globaldb, routing and reconcile.

Each adapter translates; it never decides. Decisions live in the actions (read the world, then act) and in the
operations themselves (which refuse with an error naming why).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from regionctl.config import Settings
from regionctl.errors import InputError, NotFoundError
from regionctl.globaldb.service import GlobalDatabases
from regionctl.jsonable import to_jsonable
from regionctl.routing.client import ControlClient
from regionctl.runbooks.ports import DatabaseStatus, MemberStatus, Ports, ProbeResult
from regionctl.runtime.topology import Topology

ROLE_FOR_RUNBOOKS = {"writer": "writer", "standby": "standby", "stopped": "down", "unreachable": "down"}


class GlobalDatabasesPort:
    """``Databases`` over ``globaldb.GlobalDatabases``."""

    def __init__(self, gdbs: GlobalDatabases) -> None:
        self.gdbs = gdbs

    def status(self, database: str) -> DatabaseStatus:
        status = self.gdbs.status(database)
        members = {
            m.region: MemberStatus(
                region=m.region,
                role="diverged" if m.intended == "diverged" else ROLE_FOR_RUNBOOKS[m.role],
                timeline=m.timeline, streaming=bool(m.streaming), lag_bytes=m.lag_bytes, lag_ms=m.lag_ms,
            )
            for m in status.members
        }
        writer = next((r for r, m in members.items() if m.role == "writer"), None)
        interrupted = self.gdbs.state(database).interrupted()
        return DatabaseStatus(database=database, writer=writer, members=members,
                              interrupted_to=interrupted.to_region if interrupted else None)

    def switchover(self, database: str, to_region: str) -> Any:
        return self._already(database, to_region, "switchover") or to_jsonable(self.gdbs.switchover(database,
                                                                                                   to_region))

    def failover(self, database: str, to_region: str) -> Any:
        return self._already(database, to_region, "failover") or to_jsonable(self.gdbs.failover(database, to_region))

    def _already(self, database: str, to_region: str, how: str) -> dict[str, Any] | None:
        """The port's contract: asked for what is done, report it (globaldb itself refuses, for its CLI). Decided
        as globaldb decides it, on the intended writer in its state file: no member is read (a failover's old
        region may take its timeout to answer)."""
        state = self.gdbs.state(database)
        if state.writer == to_region and state.interrupted() is None:
            return {"database": database, "writer": to_region, "requested": False,
                    "reason": f"{to_region} already writes {database}; no {how}"}
        return None

    def preserve(self, database: str, region: str) -> Any:
        return to_jsonable(self.gdbs.preserve(database, region))

    def rebuild(self, database: str, region: str) -> Any:
        return to_jsonable(self.gdbs.rebuild(database, region))

    def snapshot(self, database: str, region: str, label: str) -> Any:
        """Snapshots are taken from the writer wherever it is and held in both regions; ``region`` is checked."""
        self.gdbs.topo.settings.require_region(region)
        return to_jsonable(self.gdbs.snapshot(database, label=label))

    def restore(self, database: str, snapshot: str, name: str, target_time: str | None,
                target_lsn: str | None) -> Any:
        """``snapshot`` may name one (it must exist) or be ``latest``: the newest consistent before the target
        is used either way, as a restore needs."""
        if snapshot != "latest" and all(snapshot not in (s.id, s.label) for s in self.gdbs.snapshots(database)):
            raise NotFoundError(f"no snapshot {snapshot!r} of {database}")
        when = None
        if target_time:
            try:
                when = datetime.fromisoformat(target_time)
            except ValueError:
                raise InputError(f"target_time {target_time!r} is not an ISO 8601 time") from None
        return to_jsonable(self.gdbs.restore(database, when, target_lsn, restore_name=name.lower()))


class RoutingPort:
    """``Routing`` over the control API (a fresh client per call: the API may restart between steps)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _client(self) -> ControlClient:
        return ControlClient.from_settings(self.settings)

    def states(self) -> Mapping[str, str]:
        controls = self._client().state()["controls"]
        return {region: controls[region] for region in self.settings.regions if region in controls}

    def healthy(self, region: str) -> bool:
        regions = {r["region"]: r for r in self._client().status()["regions"]}
        return bool(regions.get(region, {}).get("routable"))

    def set_states(self, changes: Mapping[str, str], overrides: Sequence[str], actor: str, reason: str) -> Any:
        return self._client().change({k: v == "On" for k, v in changes.items()}, overrides, actor, reason)


def entry_url(settings: Settings) -> str:
    host, port = Topology(settings).ports.all()["global/entry"]
    return f"http://{host}:{port}"


def post_order(settings: Settings, url: Callable[[], str], post: Callable[..., httpx.Response] = httpx.post,
               timeout_s: float = 3.0) -> ProbeResult:
    """One order posted to ``url()`` with a fresh Idempotency-Key: which region served it (the answer's
    ``region``, else its ``X-Region``), and which region's orders database committed it (the member the shop
    names, ``orders-REGION``); a writer the answer does not name stays None."""
    try:
        response = post(url(), timeout=timeout_s, headers={"Idempotency-Key": f"probe-{uuid.uuid4()}"})
    except (httpx.HTTPError, KeyError) as exc:
        return ProbeResult(False, detail=f"{type(exc).__name__}: {exc}")
    if not response.is_success:
        return ProbeResult(False, detail=f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return ProbeResult(True, served_by=response.headers.get("X-Region"), detail="the answer was not JSON")
    return ProbeResult(True, served_by=body.get("region") or response.headers.get("X-Region"),
                       writer=region_of_member(settings, body.get("writer")))


def global_write_probe(settings: Settings) -> Callable[[], ProbeResult]:
    """An order through the global entry (the measure of recovery)."""
    return lambda: post_order(settings, lambda: f"{entry_url(settings)}{settings.workload.probe_path}")


def region_of_member(settings: Settings, member: str | None) -> str | None:
    """``orders-us-west-2`` -> ``us-west-2`` (members are named DATABASE-REGION)."""
    return next((r for r in settings.regions if member and member.endswith(f"-{r}")), None)


def bind(settings: Settings) -> Ports:
    """The local provider's ports (``providers.bind`` picks them or the AWS provider's): globaldb, routing,
    reconcile, probes.

    Probe names the bundled runbooks use: ``global_write`` (an order accepted through the global entry point).
    """
    from regionctl.globaldb.service import GlobalDatabases
    from regionctl.reconcile.service import Reconciler as ReconcileService
    from regionctl.runtime.network import deployment_network
    from regionctl.runtime.topology import Topology

    topo = Topology(settings)
    network = deployment_network(topo)
    return Ports(
        databases=GlobalDatabasesPort(GlobalDatabases(topo, network)),
        routing=RoutingPort(settings),
        reconciler=ReconcileService(topo, network),
        probes={"global_write": global_write_probe(settings)},
        functions={},
    )
