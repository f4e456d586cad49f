"""The in-memory fake behaves like the PostgreSQL store for everything a service can observe in one region."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from regionctl.errors import InputError
from regionctl.regionalstore import RegionalStore
from regionctl.regionalstore.memory import MemoryStore

pytestmark = pytest.mark.integration
EAST = "us-east-1"
PUBLIC = ("migrate", "get", "put", "update", "delete", "scan", "purge_tombstones", "close")


@pytest.fixture(params=["memory", "postgres"])
def store(request: pytest.FixtureRequest, dsns: dict[str, str]) -> Iterator[RegionalStore | MemoryStore]:
    if request.param == "memory":
        yield MemoryStore(EAST)
        return
    real = RegionalStore(dsns[EAST], EAST)
    real.migrate()
    yield real
    real.close()


def test_same_public_signatures() -> None:
    for name in PUBLIC:
        assert inspect.signature(getattr(MemoryStore, name)) == inspect.signature(getattr(RegionalStore, name)), name


def test_cart_lifecycle_reads_the_same(store: RegionalStore | MemoryStore) -> None:
    first = store.put("carts", "c1:w1", {"quantity": 1})
    store.put("carts", "c1:w2", {"quantity": 1})
    store.put("carts", "c2:w1", {"quantity": 1})
    bumped = store.update("carts", "c1:w1", lambda v: {"quantity": (v or {"quantity": 0})["quantity"] + 1})
    assert bumped is not None and bumped.value == {"quantity": 2} and bumped.hlc > first.hlc
    assert store.update("carts", "c1:w1", lambda v: v) == bumped
    assert [(i.key, i.value) for i in store.scan("carts", "c1:")] == [("c1:w1", {"quantity": 2}),
                                                                      ("c1:w2", {"quantity": 1})]
    assert store.delete("carts", "c1:w2") and not store.delete("carts", "c1:w2")
    assert store.update("carts", "c1:w2", lambda v: v) is None
    assert store.get("carts", "c1:w2") is None
    assert store.get("carts", "c1:w2", tombstones=True).deleted  # type: ignore[union-attr]
    assert [i.key for i in store.scan("carts", "c1:", tombstones=True)] == ["c1:w1", "c1:w2"]
    revived = store.put("carts", "c1:w2", {"quantity": 5})
    assert revived.origin == EAST and not revived.deleted
    returned = store.get("carts", "c1:w1")
    assert returned is not None
    returned.value["quantity"] = 99  # type: ignore[index]  # callers get copies
    assert store.get("carts", "c1:w1").value == {"quantity": 2}  # type: ignore[union-attr]


def test_same_refusals(store: RegionalStore | MemoryStore) -> None:
    for call in (lambda: store.put("Bad", "k", {}), lambda: store.put("carts", "", {}),
                 lambda: store.put("carts", "k", [1]),  # type: ignore[arg-type]
                 lambda: store.update("carts", "k", lambda v: 3),  # type: ignore[arg-type,return-value]
                 lambda: store.purge_tombstones(-1)):
        with pytest.raises(InputError):
            call()
    assert store.scan("carts", tombstones=True) == []
