"""Last-writer-wins on (hlc, origin), and the detection of concurrent writes, as pure functions.

Every stored version carries a version vector (``vv``: region -> the largest HLC of that region's writes in the
item's history). LWW alone decides which value survives. The vectors tell whether the two versions met at
replication come from concurrent writes: neither the incoming write nor the local write had seen the other. That
is a conflict; it is reported by the region that detects it (one region, or both when deliveries cross), and the
merged vector makes every later write a successor of both sides, so it is never reported again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

Stamp = tuple[int, str]
VersionVector = Mapping[str, int]


@dataclass(frozen=True)
class Version:
    """What LWW needs to know of one version of an item (its value is irrelevant to the decision)."""

    hlc: int
    origin: str
    vv: VersionVector = field(default_factory=dict)
    deleted: bool = False

    @property
    def stamp(self) -> Stamp:
        return (self.hlc, self.origin)


def dominates(a: VersionVector, b: VersionVector) -> bool:
    """True when history ``a`` includes every write of history ``b``."""
    return all(a.get(region, 0) >= hlc for region, hlc in b.items())


def concurrent(a: VersionVector, b: VersionVector) -> bool:
    return not dominates(a, b) and not dominates(b, a)


def merge(a: VersionVector, b: VersionVector) -> dict[str, int]:
    merged = dict(a)
    for region, hlc in b.items():
        merged[region] = max(merged.get(region, 0), hlc)
    return merged


def describe(version: Version) -> str:
    kind = "tombstone" if version.deleted else "version"
    return f"{kind} ({version.hlc}, {version.origin})"


class Action(enum.StrEnum):
    INSERT = "insert"  # no local version: store the incoming one
    REPLACE = "replace"  # the incoming version wins: it replaces the local one
    KEEP = "keep"  # the local version wins; only its version vector absorbs the incoming history
    SKIP = "skip"  # nothing to do (a duplicate, or an old version already superseded)


@dataclass(frozen=True)
class Decision:
    action: Action
    conflict: bool
    vv: dict[str, int]
    reason: str

    @property
    def winner(self) -> str:
        return "incoming" if self.action in (Action.INSERT, Action.REPLACE) else "local"


def knows(history: VersionVector, version: Version) -> bool:
    """True when a version with this history had seen the write that made ``version``."""
    return history.get(version.origin, 0) >= version.hlc


def decide(incoming: Version, local: Version | None) -> Decision:
    """What applying ``incoming`` (replicated from another region) does to the ``local`` version of the item."""
    if local is None:
        return Decision(Action.INSERT, False, dict(incoming.vv), "no local version of this item")
    merged = merge(local.vv, incoming.vv)
    absorb = Action.SKIP if merged == dict(local.vv) else Action.KEEP
    if incoming.stamp == local.stamp:
        return Decision(absorb, False, merged, f"duplicate: {describe(incoming)} is already applied")
    concurrent_writes = not knows(incoming.vv, local) and not knows(local.vv, incoming)
    if incoming.stamp > local.stamp:
        if concurrent_writes:
            reason = f"concurrent writes: incoming {describe(incoming)} wins over local {describe(local)}"
            return Decision(Action.REPLACE, True, merged, reason)
        return Decision(Action.REPLACE, False, merged, f"{describe(incoming)} supersedes local {describe(local)}")
    if knows(local.vv, incoming):
        return Decision(absorb, False, merged, f"{describe(incoming)} is already superseded by {describe(local)}")
    if concurrent_writes:
        reason = f"concurrent writes: local {describe(local)} wins over incoming {describe(incoming)}"
    else:
        reason = (f"clock anomaly: incoming {describe(incoming)} follows local {describe(local)} but is "
                  "older; local kept by (hlc, origin)")
    return Decision(Action.KEEP, True, merged, reason)


def local_write(existing: Version | None, proposed_hlc: int, region: str, deleted: bool = False) -> Version:
    """The version a local write creates: stamped after the version it overwrites, whatever the clocks say.

    The SQL in ``store.py`` computes the same thing in one statement (``greatest(proposed, hlc + 1)``).
    """
    hlc = proposed_hlc if existing is None else max(proposed_hlc, existing.hlc + 1)
    vv = {**(existing.vv if existing is not None else {}), region: hlc}
    return Version(hlc, region, vv, deleted)
