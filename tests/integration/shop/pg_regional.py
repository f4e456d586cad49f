"""A minimal stand-in for ``regionctl.regionalstore.RegionalStore`` on PostgreSQL: the same API, one region, no
replication. Service processes in integration tests load it with ``REGIONAL_STORE_IMPL``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class Item:
    table: str
    key: str
    value: dict[str, Any]
    hlc: int
    origin: str
    deleted: bool


class PgRegionalStore:
    def __init__(self, dsn: str, region: str) -> None:
        self.region = region
        self.conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row, connect_timeout=2)
        self.lock = threading.Lock()

    def migrate(self) -> None:
        self.conn.execute("create table if not exists regional_item (tbl text, key text, value jsonb not null, "
                          "hlc bigint not null, origin text not null, deleted boolean not null default false, "
                          "primary key (tbl, key))")

    def _item(self, row: dict[str, Any] | None) -> Item | None:
        if row is None:
            return None
        return Item(row["tbl"], row["key"], row["value"], row["hlc"], row["origin"], row["deleted"])

    def _write(self, cur: psycopg.Cursor[Any], table: str, key: str, value: dict[str, Any], deleted: bool) -> Item:
        row = cur.execute(
            "insert into regional_item values (%s, %s, %s, %s, %s, %s) on conflict (tbl, key) do update set "
            "value = excluded.value, hlc = excluded.hlc, origin = excluded.origin, deleted = excluded.deleted "
            "returning *", (table, key, Jsonb(value), time.time_ns(), self.region, deleted)).fetchone()
        item = self._item(row)
        assert item is not None
        return item

    def get(self, table: str, key: str) -> Item | None:
        with self.lock:
            return self._item(self.conn.execute("select * from regional_item where tbl = %s and key = %s",
                                                (table, key)).fetchone())

    def put(self, table: str, key: str, value: dict[str, Any]) -> Item:
        with self.lock, self.conn.cursor() as cur:
            return self._write(cur, table, key, value, False)

    def update(self, table: str, key: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Item | None:
        with self.lock, self.conn.transaction(), self.conn.cursor() as cur:
            row = cur.execute("select * from regional_item where tbl = %s and key = %s for update",
                              (table, key)).fetchone()
            if row is None or row["deleted"]:
                return None
            return self._write(cur, table, key, fn(dict(row["value"])), False)

    def delete(self, table: str, key: str) -> bool:
        with self.lock, self.conn.transaction(), self.conn.cursor() as cur:
            row = cur.execute("select deleted from regional_item where tbl = %s and key = %s for update",
                              (table, key)).fetchone()
            if row is None or row["deleted"]:
                return False
            self._write(cur, table, key, {}, True)
            return True

    def scan(self, table: str, prefix: str) -> list[Item]:
        with self.lock:
            rows = self.conn.execute("select * from regional_item where tbl = %s and starts_with(key, %s) "
                                     "order by key", (table, prefix)).fetchall()
        return [i for i in map(self._item, rows) if i is not None]

    def close(self) -> None:
        self.conn.close()
