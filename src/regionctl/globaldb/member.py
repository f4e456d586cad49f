"""The member protocol: what the global plane may do to one member of a global database, over the network only.

SQL goes to the member's address as the global plane reaches it (through the link: a region can be cut off);
everything that needs the member's host (starting, stopping, rewinding, copying its directory) is a call to
that region's agent. ``AgentMember`` is the implementation; unit tests use fakes of the same shape. Nothing
here knows a data directory or runs a binary (invariant 8).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from regionctl.agent.client import LONG_CALL_S, PROBE_S, STREAM_END, STREAM_ERROR, AgentClient
from regionctl.errors import ProcessError, Unreachable
from regionctl.runtime.pgsql import PgEndpoint
from regionctl.runtime.process import GLOBAL_PLANE
from regionctl.runtime.secrets import agent_token
from regionctl.runtime.topology import Network, Topology


class Member(Protocol):
    """The part of a member the failover decisions use (unit tests pass fakes; ``AgentMember`` is the real one)."""

    @property
    def name(self) -> str: ...

    def stop(self, mode: str = "fast") -> bool: ...
    def reachable_state(self) -> dict[str, Any] | None: ...
    def in_recovery(self) -> bool: ...


@dataclass(frozen=True)
class AgentMember(PgEndpoint):
    """A member reached through its region's agent (host operations) and its address (SQL)."""

    region: str = ""
    database: str = ""
    agent: AgentClient | None = field(default=None, compare=False)

    @property
    def _agent(self) -> AgentClient:
        if self.agent is None:
            raise Unreachable(f"{self.name}: no agent is known for {self.region}")
        return self.agent

    def _path(self, tail: str = "") -> str:
        return f"/v1/members/{self.database}{tail}"

    # ----- state ------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What the agent sees: exists, running, pid. Raises Unreachable when the agent does not answer."""
        return dict(self._agent.call("GET", self._path(), timeout=min(self._agent.timeout, 2.0)))

    @property
    def running(self) -> bool:
        return bool(self.state()["running"])

    @property
    def exists(self) -> bool:
        return bool(self.state()["exists"])

    def reachable_state(self) -> dict[str, Any] | None:
        """The agent's view, or None when the region cannot be reached (never guessed as "stopped")."""
        try:
            return self.state()
        except Unreachable:
            return None

    # ----- lifecycle --------------------------------------------------------------------------------------
    def init(self) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path("/init"), timeout=LONG_CALL_S))

    def start(self, role: str, primary_conninfo: str | None = None, slot: str | None = None) -> dict[str, Any]:
        body = {"role": role, "primary_conninfo": primary_conninfo, "slot": slot}
        return dict(self._agent.call("POST", self._path("/start"), body, timeout=120))

    def stop(self, mode: str = "fast") -> bool:
        """Stop the member; True if it was running (the agent saw its postmaster exit)."""
        # A fence (immediate) waits a few seconds only: an agent that does not answer is no fence, and the
        # failover then waits for the old writer's lease to expire instead.
        done = self._agent.call("POST", self._path("/stop"), {"mode": mode},
                                timeout=min(self._agent.timeout, PROBE_S) if mode == "immediate" else 120)
        return done["action"] == "stopped"

    def promote(self) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path("/promote"), timeout=60))

    def control_data(self) -> dict[str, str]:
        return dict(self._agent.call("GET", self._path("/control-data")))

    # ----- copies -----------------------------------------------------------------------------------------
    def rewind(self, source_conninfo: str) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path("/rewind"), {"source_conninfo": source_conninfo},
                                     timeout=LONG_CALL_S))

    def base_backup(self, source_conninfo: str, slot: str) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path("/base-backup"),
                                     {"source_conninfo": source_conninfo, "slot": slot}, timeout=LONG_CALL_S))

    def preserve(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path("/preserve"), {"name": name, "meta": meta},
                                     timeout=LONG_CALL_S))

    def copies(self) -> list[dict[str, Any]]:
        return list(self._agent.call("GET", self._path("/copies")))

    # ----- snapshots, archives, throwaway instances ------------------------------------------------------
    def snapshot(self, snap_id: str, label: str | None) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path("/snapshots"), {"id": snap_id, "label": label},
                                     timeout=LONG_CALL_S))

    def snapshots(self) -> list[dict[str, Any]]:
        return list(self._agent.call("GET", self._path("/snapshots")))

    def pull_snapshot(self, snap_id: str, origin: str, source_url: str) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path(f"/snapshots/{snap_id}/pull"),
                                     {"origin": origin, "source_url": source_url}, timeout=LONG_CALL_S))

    def pull_archive(self, origin: str, source_url: str) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path("/archive/pull"),
                                     {"origin": origin, "source_url": source_url}, timeout=300))

    def restore(self, restore_id: str, snapshot: str, target: dict[str, Any]) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path("/restores"),
                                     {"id": restore_id, "snapshot": snapshot, "target": target}, timeout=LONG_CALL_S))

    def restores(self) -> list[dict[str, Any]]:
        return list(self._agent.call("GET", self._path("/restores")))

    def start_recon(self, copy_name: str, name: str) -> dict[str, Any]:
        return dict(self._agent.call("POST", self._path("/recon"), {"name": name, "copy_name": copy_name},
                                     timeout=600))

    def drop_scratch(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self._agent.call("DELETE", f"/v1/scratch/{kind}/{name}", timeout=120))

    def waldump(self, kind: str, name: str, copy_name: str | None, start: str, timeline: int) -> Iterator[str]:
        """pg_waldump's records as the agent streams them; its failure raised once the stream says so."""
        body = {"kind": kind, "name": name, "copy_name": copy_name, "start": start, "timeline": timeline}
        ended = False
        for line in self._agent.lines("POST", self._path("/waldump"), body):
            if line.startswith(STREAM_ERROR):
                raise ProcessError("pg_waldump", 1, line[len(STREAM_ERROR):])
            if line.startswith(STREAM_END):
                ended = True
                break
            yield line
        if not ended:
            raise Unreachable(f"{self.name}: the agent's pg_waldump stream ended before its last line")


class Agents:
    """Every region's agent as the global plane reaches it (one kept HTTP client per region)."""

    def __init__(self, topo: Topology, network: Network) -> None:
        self.topo = topo
        self.network = network
        self._clients: dict[str, AgentClient] = {}
        self._lock = threading.Lock()

    def url_from(self, src: str, region: str) -> str:
        """The base URL of ``region``'s agent as a process in ``src`` (a region or the global plane) reaches it."""
        host, port = self.topo.agent_address(region)
        if src != region:
            host, port = self.network.reach(src, region, "agent", (host, port))
        return f"http://{host}:{port}"

    def view(self, region: str) -> dict[str, Any]:
        """What ``region``'s agent reports, or that it cannot be reached (never guessed)."""
        client = self.client(region)
        try:
            seen = client.call("GET", "/v1/status", timeout=min(client.timeout, 3.0))
        except Unreachable as exc:
            return {"region": region, "url": client.base_url, "reachable": False, "error": str(exc), "members": [],
                    "operations": []}
        return {"region": region, "url": client.base_url, "reachable": True, "error": None, **seen}

    def client(self, region: str) -> AgentClient:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = AgentClient(region, self.url_from(GLOBAL_PLANE, region),
                                                    agent_token(self.topo.settings),
                                                    timeout=self.topo.settings.agents.timeout_s)
            return self._clients[region]
