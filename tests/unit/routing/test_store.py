"""The SQLite store keeps the panel and its audit log across restarts, and refuses stale or mismatched writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionctl.errors import ConfigError, ConflictError
from regionctl.routing.model import ChangeRequest, default_spec
from regionctl.routing.service import ControlService
from regionctl.routing.store import AuditRecord, MemoryControlStore, SqliteControlStore

SPEC = default_spec(["us-east-1", "us-west-2"])


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_commit_is_compare_and_swap(tmp_path: Path, kind: str) -> None:
    store = SqliteControlStore.open(tmp_path / "c.sqlite", SPEC, 1.0) if kind == "sqlite" else MemoryControlStore(SPEC)
    panel = store.load()
    record = AuditRecord(2.0, "t", "change", "applied", "x")
    store.commit(panel.with_states({"us-east-1": False}, 2.0), panel.version, record)
    with pytest.raises(ConflictError, match="changed meanwhile"):
        store.commit(panel.with_states({"us-west-2": False}, 3.0), panel.version, record)
    assert store.load().states() == {"us-east-1": False, "us-west-2": True, "automation": True}
    assert store.load().version == panel.version + 1


def test_sqlite_panel_and_audit_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "controls.sqlite"
    service = ControlService(SqliteControlStore.open(path, SPEC, 1.0), clock=lambda: 100.0)
    assert service.change(ChangeRequest({"us-east-1": False}, actor="alice")).applied
    reopened = SqliteControlStore.open(path, SPEC, 200.0)
    panel = reopened.load()
    assert panel.controls["us-east-1"].on is False and panel.controls["us-east-1"].changed_at == 100.0
    assert set(panel.rules) == {r.name for r in SPEC.rules}
    entries = reopened.audit()
    assert [e.record.action for e in entries] == ["change", "panel-created"]
    assert entries[0].record.actor == "alice" and entries[0].record.detail["after"]["us-east-1"] == "Off"
    assert [e.id for e in reopened.audit(limit=5, before_id=entries[0].id)] == [entries[1].id]


def test_sqlite_refuses_a_panel_for_other_regions(tmp_path: Path) -> None:
    path = tmp_path / "controls.sqlite"
    SqliteControlStore.open(path, SPEC, 1.0)
    with pytest.raises(ConfigError, match="needs \\['automation', 'eu-west-1', 'us-east-1'\\]"):
        SqliteControlStore.open(path, default_spec(["us-east-1", "eu-west-1"]), 1.0)
