"""`postgres.bin_dir` selects other PostgreSQL binaries: the Debian PostgreSQL 15 of this image carries a global
database and a switchover just like the embedded 18."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from regionctl.config import load_settings
from regionctl.errors import ConfigError
from regionctl.globaldb.service import GlobalDatabases
from regionctl.runtime.postgres import PgBinaries
from regionctl.runtime.topology import DirectNetwork
from tests.support.agents import region_agents
from tests.support.deploy import scratch_root
from tests.support.ports import deployment_base_port

pytestmark = pytest.mark.integration
DEBIAN_PG = Path("/usr/lib/postgresql/15/bin")


def test_a_bin_dir_without_postgres_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="postgres.bin_dir"):
        PgBinaries.locate(tmp_path)


@pytest.mark.skipif(not (DEBIAN_PG / "postgres").exists(), reason="no Debian PostgreSQL 15 on this machine")
def test_debian_postgres_15_runs_a_global_database_and_a_switchover() -> None:
    root = scratch_root("regionctl-pg15-")
    settings = load_settings(data_dir=root / "data", base_port=deployment_base_port(),
                             postgres={"bin_dir": str(DEBIAN_PG)})
    with region_agents(settings) as topo:
        _switchover_on_pg15(GlobalDatabases(topo, DirectNetwork(), ("orders",)))
    shutil.rmtree(root, ignore_errors=True)


def _switchover_on_pg15(gdbs: GlobalDatabases) -> None:
    try:
        gdbs.ensure("orders")
        writer = gdbs.cluster("orders").member("us-east-1")
        assert writer.scalar("show server_version").startswith("15.")
        writer.query("create table t (id int primary key)", dbname="orders")
        writer.query("insert into t select generate_series(1, 100)", dbname="orders")
        result = gdbs.switchover("orders", "us-west-2")
        assert result.replayed_everything and result.old_writer_streaming
        assert gdbs.cluster("orders").member("us-west-2").scalar("select count(*) from t", dbname="orders") == 100
    finally:
        gdbs.stop("orders")
