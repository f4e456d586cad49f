"""What the AWS provider did, kept on disk: each promotion it asked Aurora for, and what became of the old writer.

Aurora's ``FailoverState`` says a failover is in progress, but not, once it is over, that the old writer's copy
diverged. So the intent is written before the request (as ``globaldb.state`` does locally) and the record then
follows the former writer: its failover snapshot kept, then rebuilt by Aurora as a secondary. Until it is rebuilt
its member reports ``diverged``, which is what makes the runbooks keep its copy and report what it lost.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from regionctl.errors import ConfigError


@dataclass(frozen=True)
class Promotion:
    database: str
    from_region: str | None
    to_region: str
    planned: bool  # switchover (RPO 0) or failover (data loss allowed)
    requested_at: str  # ISO 8601, UTC
    preserved_snapshot: str | None = None  # the old writer's copy, once kept (unplanned only)
    rebuilt: bool = False  # the old writer follows the new one again (unplanned only)
    report_id: str | None = None  # the missing-transaction report of this divergence, once made

    @property
    def diverged_region(self) -> str | None:
        """The former writer whose copy may hold commits the new writer lacks, until it is rebuilt."""
        if self.planned or self.rebuilt:
            return None
        return self.from_region

    @property
    def stamp(self) -> str:
        """A name part unique to this promotion (snapshot names derive from it, so retries find theirs)."""
        return datetime.fromisoformat(self.requested_at).strftime("%Y%m%d%H%M%S")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class PromotionRecords:
    """The last promotion per database, one JSON file each, replaced atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, database: str) -> Path:
        return self.directory / f"{database}.json"

    def last(self, database: str) -> Promotion | None:
        path = self._path(database)
        if not path.exists():
            return None
        try:
            return Promotion(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is not a promotion record ({exc}); move it away to start afresh") from None

    def save(self, record: Promotion) -> Promotion:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(record.database)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2))
        os.replace(tmp, path)
        return record

    def put_back(self, database: str, record: Promotion | None) -> None:
        """Undo a ``save``: the record before it, or none."""
        if record is None:
            self._path(database).unlink(missing_ok=True)
        else:
            self.save(record)

    def update(self, record: Promotion, **changes: object) -> Promotion:
        return self.save(replace(record, **changes))  # type: ignore[arg-type]
