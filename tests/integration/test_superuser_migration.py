"""A data directory made before SCRAM (the superuser without a password, trusted from loopback) is moved over
when its instance next starts: afterwards the superuser without the password is refused, with it admitted."""

from __future__ import annotations

import psycopg
import pytest

from tests.integration.shop.pg import TEST_SETTINGS, destroy, new_instance, scratch_dir

pytestmark = pytest.mark.integration
LEGACY_HBA = """local   all             all                                     trust
host    all             postgres        127.0.0.0/8             trust
host    replication     all             127.0.0.0/8             trust
host    all             all             127.0.0.0/8             scram-sha-256
"""


def refused_without_password(host: str, port: int) -> bool:
    try:
        psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", passfile="/nonexistent",
                        connect_timeout=5).close()
    except psycopg.OperationalError:
        return True
    return False


def test_a_trusting_data_directory_is_moved_to_scram_at_its_next_start() -> None:
    root = scratch_dir("regionctl-legacy-")
    instance = new_instance(root, "legacy")
    try:
        instance.initdb()
        instance.start(TEST_SETTINGS)
        instance.query("alter role postgres password null")  # as the old initdb --auth=trust left it
        (instance.datadir / "pg_hba.conf").write_text(LEGACY_HBA)
        instance.stop()
        instance.start(TEST_SETTINGS)
        assert refused_without_password(instance.host, instance.port)
        assert instance.scalar("select current_user") == "postgres"  # the deployment's password file
        assert "trust" not in (instance.datadir / "pg_hba.conf").read_text()
    finally:
        destroy([instance], root)
