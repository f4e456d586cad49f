"""Reports kept on disk under ``<root>/reports/<id>/``: the JSON of record, its CSV and HTML renderings, and one
file per replay (who approved it, what it applied, what it refused). Files are replaced atomically; building a
report or replaying it holds a per-report lock, so two operators never interleave on the same report.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from regionctl.errors import InputError, NotFoundError
from regionctl.reconcile.model import Report, report_from_json
from regionctl.reconcile.render import FORMATS, render

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


def _write(path: Path, text: str | bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


class ReportStore:
    def __init__(self, root: Path) -> None:
        self.directory = root / "reports"

    def _dir(self, report_id: str) -> Path:
        if not ID_PATTERN.match(report_id):
            raise InputError(f"{report_id!r} is not a report id")
        return self.directory / report_id

    @contextmanager
    def locked(self, report_id: str) -> Iterator[None]:
        self._dir(report_id).mkdir(parents=True, exist_ok=True)
        with open(self._dir(report_id) / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def exists(self, report_id: str) -> bool:
        return (self._dir(report_id) / "report.json").exists()

    def save(self, report: Report, renderings: bool = False) -> Path:
        """Write the report (JSON, the record) and its summary; CSV and HTML now, or on first request."""
        directory = self._dir(report.id)
        directory.mkdir(parents=True, exist_ok=True)
        for fmt in ("csv", "html"):
            (directory / f"report.{fmt}").unlink(missing_ok=True)
            if renderings:
                _write(directory / f"report.{fmt}", render(report, fmt))
        _write(directory / "summary.json", json.dumps(report.summary()))
        _write(directory / "report.json", report.to_bytes())  # last: its presence means the report is whole
        return directory

    def load(self, report_id: str) -> Report:
        path = self._dir(report_id) / "report.json"
        if not path.exists():
            raise NotFoundError(f"no reconciliation report {report_id!r}; `regionctl reconcile list` shows them")
        return report_from_json(path.read_bytes())

    def rendering(self, report_id: str, fmt: str) -> str:
        """The report as json, csv or html; renderings are made from the JSON on first request and kept."""
        if fmt not in FORMATS:
            raise InputError(f"report format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        path = self._dir(report_id) / f"report.{fmt}"
        if not path.exists():
            text = render(self.load(report_id), fmt)  # load raises NotFound with the helpful message
            _write(path, text)
            return text
        return path.read_text(encoding="utf-8")

    def list(self, database: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every whole report (its summary file; the report itself may be large), oldest first."""
        found = []
        for path in sorted(self.directory.glob("*/report.json")):
            summary_file = path.with_name("summary.json")
            raw = json.loads(summary_file.read_bytes()) if summary_file.exists() else report_from_json(
                path.read_bytes()).summary()
            if database is not None and raw["database"] != database:
                continue
            found.append({**raw, "replays": len(self.replays(raw["report_id"]))})
        return sorted(found, key=lambda r: r["created_at"])

    def for_promotion(self, promotion_id: str) -> builtins.list[str]:
        return [r["report_id"] for r in self.list() if r["promotion_id"] == promotion_id]

    def save_replay(self, report_id: str, outcome: dict[str, Any]) -> Path:
        directory = self._dir(report_id) / "replays"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{len(list(directory.glob('*.json'))) + 1:04d}.json"
        _write(path, json.dumps(outcome, indent=1))
        return path

    def replays(self, report_id: str) -> builtins.list[dict[str, Any]]:
        directory = self._dir(report_id) / "replays"
        return [json.loads(p.read_bytes()) for p in sorted(directory.glob("*.json"))] if directory.exists() else []

