"""One replicator per direction, and a dead one behind a partition does not block its successor forever."""

from __future__ import annotations

import time

import psycopg
import pytest

from regionctl.errors import ConflictError
from regionctl.regionalstore import replication as rep
from regionctl.regionalstore.pool import connect

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"


def test_a_live_holder_keeps_the_direction_and_a_stale_one_is_replaced(dsns: dict[str, str]) -> None:
    first = connect(dsns[WEST])
    second = connect(dsns[WEST])
    try:
        rep.claim_direction(first, EAST)
        with pytest.raises(ConflictError, match="another replicator"):
            rep.claim_direction(second, EAST, stale_after_s=60)
        rep.claim_direction(second, WEST)  # the other direction is a different claim
        time.sleep(0.6)  # first stays idle, as a replicator cut off by a partition would
        rep.claim_direction(second, EAST, stale_after_s=0.5)
        for _ in range(50):
            if first.closed or first.broken:
                break
            try:
                first.execute("select 1")
            except psycopg.OperationalError:  # terminated by the successor
                break
            time.sleep(0.05)
        assert first.closed or first.broken
    finally:
        first.close()
        second.close()
