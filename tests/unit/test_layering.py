"""The global plane reaches regions only over the network (invariant 8): no platform module imports the local
instance driver, the agent's host-side modules, or runs processes itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "regionctl"
PLATFORM = ("globaldb", "reconcile", "credentials", "runbooks", "routing", "observe", "chaos", "providers")
HOST_ONLY = ("regionctl.runtime.postgres", "regionctl.runtime.tethered", "regionctl.runtime.osuser",
             "regionctl.agent.host", "regionctl.agent.members", "regionctl.agent.backups", "regionctl.agent.scratch",
             "regionctl.agent.api", "regionctl.agent.serve")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def platform_files() -> list[Path]:
    return sorted(p for package in PLATFORM for p in (SRC / package).rglob("*.py"))


def test_the_platform_packages_are_all_there() -> None:
    assert len(platform_files()) > 60  # the check below would pass vacuously on a wrong path


@pytest.mark.parametrize("path", platform_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_platform_module_imports_the_local_instance_driver(path: Path) -> None:
    imports = imported_modules(path)
    assert not {m for m in imports if m in HOST_ONLY or m.startswith(tuple(f"{h}." for h in HOST_ONLY))}
    assert "subprocess" not in imports, "runs a process itself: that belongs to an agent"


def test_the_check_catches_a_function_level_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from regionctl.runtime.postgres import PgInstance\n    return PgInstance\n")
    assert "regionctl.runtime.postgres" in imported_modules(sneaky)
