"""Multi-active regional store: carts and checkout state, writable in every region, replicated per item with
last-writer-wins on (hybrid logical clock, origin region), deletes as tombstones, conflicts logged.

A platform mechanism: it knows nothing of the shop. See ``store.RegionalStore`` (the API services use),
``replicator`` (one process per direction), ``status.replication_status`` and ``control.pause``/``resume``.
"""

from regionctl.regionalstore.control import Direction, PauseChange, pause, resume
from regionctl.regionalstore.items import Item
from regionctl.regionalstore.status import DirectionStatus, ReplicationStatus, list_conflicts, replication_status
from regionctl.regionalstore.store import RegionalStore

__all__ = [
    "Direction", "DirectionStatus", "Item", "PauseChange", "RegionalStore", "ReplicationStatus", "list_conflicts",
    "pause", "replication_status", "resume",
]
