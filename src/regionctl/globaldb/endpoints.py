"""Connection strings services use: the writer wherever it is (libpq multi-host), and the local reader.

A service in region R lists R's member first and the other region's member through the link; with
``target_session_attrs=read-write`` libpq connects to whichever is the writer now, so a failover needs no
reconfiguration: the client reconnects and finds the new writer (the reference's write forwarding).
"""

from __future__ import annotations

from regionctl.globaldb.members import Cluster


def _login(cluster: Cluster, service: str | None) -> str:
    """Who connects: a libpq service (user and password from the service file, see credentials/), or the
    platform's own superuser (with its password file, ``runtime.pgpass``)."""
    return f"service={service}" if service else f"user=postgres passfile={cluster.topo.paths.superuser_passfile}"


def writer_dsn(cluster: Cluster, from_region: str, dbname: str | None = None, connect_timeout: int = 2,
               service: str | None = None) -> str:
    regions = [from_region, *(r for r in cluster.regions if r != from_region)]
    addresses = [cluster.address_from(from_region, r) for r in regions]
    return (
        f"host={','.join(h for h, _ in addresses)} port={','.join(str(p) for _, p in addresses)} "
        f"{_login(cluster, service)} dbname={dbname or cluster.name} target_session_attrs=read-write "
        f"connect_timeout={connect_timeout}"
    )


def reader_dsn(cluster: Cluster, region: str, dbname: str | None = None, connect_timeout: int = 2,
               service: str | None = None) -> str:
    host, port = cluster.topo.pg_address(region, cluster.name)
    return (f"host={host} port={port} {_login(cluster, service)} dbname={dbname or cluster.name} "
            f"connect_timeout={connect_timeout}")
