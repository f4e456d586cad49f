"""Chaos experiments kept after they ran, one JSON file each under ``<state>/chaos/``: what the console draws on
its charts (when the faults went in and came out) and what an operator looks back at."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from regionctl.chaos.runner import ExperimentResult
from regionctl.runtime.topology import Topology


def chaos_dir(topo: Topology) -> Path:
    return topo.paths.state / "chaos"


def save(topo: Topology, result: ExperimentResult) -> Path:
    root = chaos_dir(topo)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(result.started_at))
    path = root / f"{stamp}-{result.experiment}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(result), indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def listing(topo: Topology, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first; a file that cannot be read is skipped (it never hides the others)."""
    root = chaos_dir(topo)
    rows = []
    for path in sorted(root.glob("*.json"), reverse=True)[:limit] if root.exists() else []:
        try:
            rows.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return rows
