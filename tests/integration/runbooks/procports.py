"""Ports for an engine subprocess under test: fakes, plus functions whose effects live on disk (they survive the
engine being killed, like the real world does)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from regionctl.config import Settings
from regionctl.runbooks.fakes import fake_ports
from regionctl.runbooks.ports import Ports


def bind(settings: Settings) -> Ports:
    root = Path(settings.root)
    effects, calls = root / "effects.txt", root / "calls.txt"

    def log_call(name: str) -> None:
        with calls.open("a") as handle:
            handle.write(name + "\n")

    def append(line: str) -> dict[str, Any]:
        """Idempotent: checks the world (the file) before acting."""
        log_call(line)
        done = effects.read_text().splitlines() if effects.exists() else []
        if line not in done:
            with effects.open("a") as handle:
                handle.write(line + "\n")
        return {"lines": len(done) + (line not in done)}

    def block_once(marker: str) -> str:
        """Blocks the first time (the test kills the engine here); returns at once when run again."""
        log_call("block")
        path = root / marker
        if not path.exists():
            path.write_text("blocked")
            time.sleep(60)
        return "passed"

    base = fake_ports(settings.regions)
    return Ports(base.databases, base.routing, base.reconciler, base.probes,
                 {"append": append, "block_once": block_once})
