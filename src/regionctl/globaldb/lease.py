"""Taking a global database's writer lease for a promotion (invariant 7: a failover promotes only once it holds
the lease; the old writer stopped acknowledging commits before the lease could expire).

The global plane asks etcd through the witness member on its own site first (the other members through the
link), so it works with one region cut off: witness and surviving region are a majority. Three ways to know
the old writer is fenced: the key is free (expired: its writer's fencer stopped it before expiry); its agent
stopped it and said so (the key is then taken over at once); or neither yet, and the promotion waits until
the lease expires, asking the agent again meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from regionctl.errors import OperationTimeout
from regionctl.runtime.etcd import client_urls_from, lease_key
from regionctl.runtime.etcdclient import Etcd
from regionctl.runtime.process import GLOBAL_PLANE
from regionctl.runtime.topology import Network, Topology

POLL_S = 0.1


class LeaseHeld(OperationTimeout):
    """The old writer's lease did not expire in time and its agent did not confirm a fence: nothing may be
    promoted (its writer may still be renewing, and acknowledging commits)."""


@dataclass(frozen=True)
class Taken:
    holder: str
    how: str  # how the old writer is known to be fenced
    waited_s: float


def expiry_wait_s(ttl: float) -> float:
    """How long a promotion waits for the old lease to expire: an etcd leader change renews every lease once
    (so up to two TTLs), plus room for the keepalive that was in flight."""
    return 3 * ttl + 5


def etcd_for(topo: Topology, network: Network) -> Etcd:
    """The witness first, then each region's member through the link."""
    return Etcd(client_urls_from(topo, network, GLOBAL_PLANE))


def holder(topo: Topology, network: Network, database: str) -> str | None:
    """The region whose writer holds the lease now (None: nobody)."""
    etcd = etcd_for(topo, network)
    try:
        current = etcd.get(lease_key(topo.settings.env, database))
    finally:
        etcd.close()
    return None if current is None else current.value


def take(topo: Topology, network: Network, database: str, to_region: str, fence: Callable[[], bool]) -> Taken:
    """Put the lease in ``to_region``'s name (its agent keeps it alive from then on). ``fence`` asks the old
    writer's agent to stop it (True once it confirmed); until it does, wait for the old lease to expire, asking
    again each time an answer comes back (a region that returns mid-wait is fenced by its agent). Raises
    OperationTimeout if neither happens in time."""
    key = lease_key(topo.settings.env, database)
    ttl = topo.settings.leases.ttl_s
    etcd = etcd_for(topo, network)
    started = time.monotonic()
    deadline = started + expiry_wait_s(ttl)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fence")
    asking: Future[bool] | None = None
    fenced = False
    try:
        while True:
            current = etcd.get(key)
            if current is not None and current.value == to_region:
                return Taken(to_region, f"{to_region} already holds the lease", 0.0)
            if asking is not None and asking.done():
                fenced, asking = _answer(asking), None
            if current is not None and not fenced and asking is None:
                asking = pool.submit(fence)  # asked in the background: the lease's expiry is watched meanwhile
            if current is None or fenced:
                lease = etcd.grant(int(ttl))
                if etcd.put_if(key, to_region, lease, None if current is None else current.value):
                    waited = time.monotonic() - started
                    how = ("the old writer's agent stopped it; its lease was taken over" if current is not None
                           else f"the old lease expired after {waited:.1f} s (its writer fences itself "
                                f"{topo.settings.leases.fence_margin_s:g} s before expiry)" if waited > POLL_S
                           else "the lease was free (it had expired earlier)")
                    return Taken(to_region, how, round(waited, 3))
                etcd.revoke(lease)
                continue  # it changed under us: look again
            if time.monotonic() > deadline:
                raise LeaseHeld(f"{database}: the lease of {current.value} did not expire within "
                                       f"{deadline - started:.0f} s; its writer may still be renewing it")
            time.sleep(POLL_S)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        etcd.close()


def _answer(asking: Future[bool]) -> bool:
    try:
        return asking.result()
    except Exception:  # noqa: BLE001 - an agent that fails to answer is no fence; the lease still decides
        return False
