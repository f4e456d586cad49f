"""The multi-active regional store as carts and checkout see it: a small protocol matching
``regionctl.regionalstore.RegionalStore`` (built separately), how to load it, and a guard that serialises calls
and reconnects when the store's database went away."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg

from regionctl.errors import ConfigError, DatabaseError

log = logging.getLogger(__name__)
Value = dict[str, Any]


class StoredItem(Protocol):
    """``Item(table, key, value, hlc, origin, deleted)`` of the regional store."""

    @property
    def table(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> Value: ...
    @property
    def origin(self) -> str: ...
    @property
    def deleted(self) -> bool: ...


class RegionalStore(Protocol):
    def migrate(self) -> None: ...
    def get(self, table: str, key: str) -> StoredItem | None: ...
    def put(self, table: str, key: str, value: Value) -> StoredItem: ...
    def update(self, table: str, key: str, fn: Callable[[Value | None], Value | None]) -> StoredItem | None: ...
    def delete(self, table: str, key: str) -> bool: ...
    def scan(self, table: str, prefix: str) -> list[StoredItem]: ...
    def close(self) -> None: ...


StoreFactory = Callable[[], RegionalStore]
TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseError, OSError)


def store_factory(impl: str, dsn: str, region: str) -> StoreFactory:
    """A factory for ``impl`` (``module:Class``, called as ``Class(dsn, region)``); ConfigError if missing."""
    module_name, _, attr = impl.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr or "RegionalStore")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"REGIONAL_STORE_IMPL: cannot load {impl!r}: {exc}") from None
    return lambda: cls(dsn, region)


def live(item: StoredItem | None) -> StoredItem | None:
    """The item unless it is absent or a tombstone."""
    return None if item is None or item.deleted else item


class GuardedStore:
    """Serialises calls to one store instance and replaces it once when its database connection broke."""

    def __init__(self, factory: StoreFactory, retry_delay_s: float = 0.2) -> None:
        self.factory = factory
        self.retry_delay_s = retry_delay_s
        self._lock = threading.Lock()
        self._store: RegionalStore | None = None

    def call(self, op: Callable[[RegionalStore], Any]) -> Any:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._store is None:
                        self._store = self.factory()
                    return op(self._store)
                except TRANSIENT as exc:
                    self._drop()
                    if attempt == 2:
                        raise DatabaseError(f"regional store unavailable: {_first_line(exc)}") from None
                    log.warning("regional store call failed, reconnecting: %s", _first_line(exc))
                    time.sleep(self.retry_delay_s)
        raise AssertionError("unreachable")

    def migrate(self) -> None:
        self.call(lambda s: s.migrate())

    def get(self, table: str, key: str) -> StoredItem | None:
        return live(self.call(lambda s: s.get(table, key)))

    def put(self, table: str, key: str, value: Value) -> StoredItem:
        return self.call(lambda s: s.put(table, key, value))

    def update(self, table: str, key: str, fn: Callable[[Value | None], Value | None]) -> StoredItem | None:
        return live(self.call(lambda s: s.update(table, key, fn)))

    def delete(self, table: str, key: str) -> bool:
        return bool(self.call(lambda s: s.delete(table, key)))

    def scan(self, table: str, prefix: str) -> list[StoredItem]:
        items = self.call(lambda s: s.scan(table, prefix))
        return [i for i in items if not i.deleted]

    def ready(self, table: str) -> str:
        """A read of a key nobody writes, in a table the service uses: the store answers."""
        self.call(lambda s: s.get(table, "readiness-probe"))
        return "reachable"

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:  # closing a broken store may fail too; it is gone either way
                log.debug("closing a broken regional store failed", exc_info=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
