"""The regional store's tables, created idempotently in schema ``regionalstore`` of the region's database.

items      one row per (table, key): the winning version, tombstones included. ``xid``/``seq`` say when the row
           last changed here (the replicator's change feed); ``origin_ts`` is the wall time of the write at its
           origin and ``applied_at`` when a replicated version was applied here (lag = the difference).
inbound    in the TARGET: per source region, the cursor of the last change applied (durable, moves in the same
           transaction as the apply, so a restarted replicator neither loses nor repeats anything).
outbound   in the SOURCE: per target region, the pause flag the replicator obeys, and what it last reported.
conflicts  concurrent writes met at replication, with both versions and the reason for the winner.
applies    in the TARGET: the lag of each recent apply (origin write to target apply), trimmed to the last few
           thousand by the replicator: what ``replication_status`` computes p50/p99 from.
"""

from __future__ import annotations

from typing import Any

import psycopg

from regionctl.errors import ConfigError
from regionctl.regionalstore.items import check_region

SCHEMA_VERSION = 1
MIGRATION_LOCK = 0x72656769  # "regi": serialises concurrent migrations of one database

DDL = """
create schema if not exists regionalstore;
create sequence if not exists regionalstore.change_seq;
create table if not exists regionalstore.meta (
    singleton boolean primary key default true check (singleton),
    region text not null,
    schema_version integer not null,
    created_at timestamptz not null default now()
);
create table if not exists regionalstore.items (
    tbl text collate "C" not null,
    key text collate "C" not null,
    value jsonb,
    deleted boolean not null,
    hlc bigint not null,
    origin text not null,
    vv jsonb not null,
    origin_ts timestamptz not null,
    applied_at timestamptz,
    seq bigint not null,
    xid bigint not null,
    primary key (tbl, key),
    check (deleted = (value is null))
);
create index if not exists items_outbound on regionalstore.items (origin, xid, seq);
create index if not exists items_tombstones on regionalstore.items (origin_ts) where deleted;
create or replace function regionalstore.notify_change() returns trigger language plpgsql as $$
begin
    if current_setting('application_name') not like 'regionalstore-apply %' then
        perform pg_notify('regionalstore_changes', '');
    end if;
    return null;
end $$;
create or replace trigger items_notify after insert or update on regionalstore.items
    for each statement execute function regionalstore.notify_change();
create table if not exists regionalstore.inbound (
    source_region text primary key,
    last_xid bigint not null default 0,
    last_seq bigint not null default 0,
    received_total bigint not null default 0,
    applied_total bigint not null default 0,
    conflicts_total bigint not null default 0,
    last_apply_at timestamptz,
    updated_at timestamptz not null default now()
);
create table if not exists regionalstore.outbound (
    target_region text primary key,
    paused boolean not null default false,
    reason text not null default '',
    changed_at timestamptz not null default now(),
    acked_xid bigint,
    acked_seq bigint,
    acked_at timestamptz,
    seen_at timestamptz,
    last_error text
);
create table if not exists regionalstore.conflicts (
    id bigserial primary key,
    detected_at timestamptz not null default clock_timestamp(),
    source_region text not null,
    tbl text not null,
    key text not null,
    winner text not null check (winner in ('incoming', 'local')),
    reason text not null,
    incoming jsonb not null,
    local jsonb not null
);
create table if not exists regionalstore.applies (
    id bigserial primary key,
    source_region text not null,
    applied_at timestamptz not null default clock_timestamp(),
    lag_ms double precision not null
);
create index if not exists applies_source on regionalstore.applies (source_region, id);
create index if not exists conflicts_detected on regionalstore.conflicts (detected_at);
"""


def migrate(conn: psycopg.Connection[Any], region: str) -> None:
    """Create what is missing and record which region this database belongs to; refuse another region's store."""
    check_region(region)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(DDL)
        conn.execute(
            "insert into regionalstore.meta (region, schema_version) values (%s, %s) on conflict do nothing",
            (region, SCHEMA_VERSION),
        )
        row = conn.execute("select region, schema_version from regionalstore.meta").fetchone()
    recorded = _first(row)
    if recorded != region:
        raise ConfigError(f"this regional store belongs to region {recorded!r}, not {region!r}; check the DSN")


def store_region(conn: psycopg.Connection[Any]) -> str | None:
    """The region a database's store belongs to, or None if it was never migrated."""
    exists = conn.execute("select to_regclass('regionalstore.meta') is not null").fetchone()
    if not _first(exists):
        return None
    return _first(conn.execute("select region from regionalstore.meta").fetchone())


def _first(row: Any) -> Any:
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
