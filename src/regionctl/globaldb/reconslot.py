"""Keep the reconciliation slot on each writer just behind what the standby has replayed.

After a failover the diverged copy of the old writer still holds this logical slot; decoding it from its
position yields every transaction the standby never replayed, with row values. The slot may lag (its advance is
persisted only at checkpoints), which is safe: the reconciler filters by the divergence point. Run as a loop
(``python -m regionctl.globaldb.reconslot``) supervised in the global plane, about once a second.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass

from regionctl.errors import DatabaseError, RegionctlError
from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.globaldb.members import RECON_SLOT, Cluster
from regionctl.globaldb.state import StateStore

log = logging.getLogger("regionctl.reconslot")


@dataclass(frozen=True)
class AdvanceResult:
    database: str
    writer: str
    created: bool
    advanced_to: str | None
    reason: str


def advance_once(cluster: Cluster, store: StateStore) -> AdvanceResult:
    state = store.load(cluster.name)
    if state is None:
        return AdvanceResult(cluster.name, "", False, None, "database not created yet")
    writer = cluster.member(state.writer)
    try:
        standby = writer.in_recovery()
    except DatabaseError:
        standby = True  # not answering (stopped, cut off): nothing to advance this round
    if standby:
        return AdvanceResult(cluster.name, state.writer, False, None, "no running writer")
    existed = bool(writer.scalar("select count(*) from pg_replication_slots where slot_name = %s and database = %s",
                                 (RECON_SLOT, cluster.name)))
    if not existed:
        cluster.ensure_recon_slot(state.writer)
    rows = writer.query("select replay_lsn::text as lsn from pg_stat_replication where replay_lsn is not null")
    if not rows:
        return AdvanceResult(cluster.name, state.writer, not existed, None, "no standby is replaying")
    replayed = min(parse_lsn(r["lsn"]) for r in rows)
    confirmed = writer.scalar(
        "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = %s", (RECON_SLOT,)
    )
    if confirmed is not None and parse_lsn(confirmed) >= replayed:
        return AdvanceResult(cluster.name, state.writer, not existed, None, "already at the standby's replay position")
    writer.query("select pg_replication_slot_advance(%s, %s::pg_lsn)", (RECON_SLOT, format_lsn(replayed)),
                 dbname=cluster.name)
    return AdvanceResult(cluster.name, state.writer, not existed, format_lsn(replayed),
                         "advanced to the standby's replay position")


def run(clusters: list[Cluster], store: StateStore, interval: float, stop_after: float | None = None) -> None:
    deadline = None if stop_after is None else time.monotonic() + stop_after
    while deadline is None or time.monotonic() < deadline:
        for cluster in clusters:
            try:
                advance_once(cluster, store)
            except RegionctlError as exc:  # a member restarting or promoting: try again next round
                log.warning("%s: %s", cluster.name, exc)
        time.sleep(interval)


def main() -> None:
    from regionctl.config import load_settings
    from regionctl.globaldb.service import GlobalDatabases
    from regionctl.runtime.network import deployment_network
    from regionctl.runtime.topology import Topology

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings()
    topo = Topology(settings)
    gdbs = GlobalDatabases(topo, deployment_network(topo))
    run([gdbs.cluster(n) for n in gdbs.names], gdbs.store, args.interval or settings.postgres.reconcile_slot_interval_s)


if __name__ == "__main__":
    main()
