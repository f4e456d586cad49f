"""A real local deployment for integration tests: link emulator, both regions' databases, supervised loops.

One per test session (starting it costs seconds); tests that break it leave it healed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from regionctl.config import EFFECTIVE_SETTINGS_ENV, Settings, load_settings
from regionctl.deploy.local import Deployment
from regionctl.globaldb.service import GlobalDatabases
from regionctl.runtime.link import LinkClient, link_client
from regionctl.runtime.network import deployment_network
from regionctl.runtime.supervisor import read_processes
from regionctl.runtime.topology import Topology
from tests.support.ports import deployment_base_port


@dataclass
class RunningDeployment:
    settings: Settings
    topo: Topology
    deployment: Deployment

    @property
    def gdbs(self) -> GlobalDatabases:
        return GlobalDatabases(self.topo, deployment_network(self.topo))

    @property
    def link(self) -> LinkClient:
        return link_client(self.settings)

    def ui(self, region: str) -> str:
        """The region's store front (what the global entry routes users to)."""
        return self.service(region, "ui")

    def service(self, region: str, name: str) -> str:
        """The base URL of one of the region's workload services (``carts``, ``orders``, ...)."""
        host, port = self.topo.ports.all()[f"{region}/{name}"]
        return f"http://{host}:{port}"

    def pids(self) -> dict[str, int]:
        """Every supervised process and its pid, as ``state/processes.json`` records them."""
        return {key: state.pid for key, state in read_processes(self.topo.paths.state).items()}

    @property
    def entry(self) -> str:
        host, port = self.topo.ports.all()["global/entry"]
        return f"http://{host}:{port}"

    @property
    def cli_env(self) -> dict[str, str]:
        """Environment that points the ``regionctl`` CLI at this deployment."""
        return {**os.environ, EFFECTIVE_SETTINGS_ENV: str(self.topo.paths.state / "effective-settings.json")}


def scratch_root(prefix: str) -> Path:
    """A data directory the unprivileged PostgreSQL user can traverse (pytest's tmp dirs are 0700)."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    return root


@contextmanager
def running_deployment(latency_ms: float = 10.0, shop: bool = True,
                       **settings_overrides: object) -> Iterator[RunningDeployment]:
    """``shop=False`` leaves the retail store out: its databases stay empty for benchmarks' own tables."""
    root = scratch_root("regionctl-it-")
    overrides: dict[str, object] = {} if shop else {"workload": {"launcher": ""}}
    overrides |= settings_overrides
    settings = load_settings(data_dir=root / "data", base_port=deployment_base_port(),
                             link={"latency_ms": latency_ms}, **overrides)
    topo = Topology(settings)
    deployment = Deployment(topo)
    stop = threading.Event()
    supervisor = None
    thread = None
    try:
        supervisor = deployment.start()
        thread = threading.Thread(target=deployment.supervise, args=(supervisor, stop.is_set), daemon=True)
        thread.start()
        yield RunningDeployment(settings, topo, deployment)
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
        deployment.stop_everything(supervisor)
        if not os.environ.get("REGIONCTL_KEEP_TEST_DATA"):  # set it to read a failed run's logs afterwards
            shutil.rmtree(root, ignore_errors=True)
