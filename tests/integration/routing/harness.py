"""Real processes for the global-plane tests: stand-in region uis, control API, entry and DNS."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from dnslib import QTYPE, RCODE, DNSRecord

from regionctl.config import Paths, Settings
from regionctl.routing.launch import process_specs
from regionctl.routing.plane import load_plane
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import ProcessSpec, python_module


def wait_until(condition, timeout_s: float, what: str, step_s: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0, trust_env=False).is_success
    except httpx.HTTPError:
        return False


@dataclass
class Plane:
    settings: Settings
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    specs: dict[str, ProcessSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.paths = Paths(self.settings.root)
        self.ports = PortRegistry(self.paths.state / "ports.json", self.settings.base_port)
        self.ui = {r: (self.settings.region_address(r), self.ports.get(f"{r}/ui", self.settings.region_address(r)))
                   for r in self.settings.regions}
        self.specs = {s.name: s for s in process_specs(self.settings, self.ports, self.paths)}
        self.plane = load_plane(self.paths.state / "routing" / "plane.json")

    def _spawn(self, name: str, argv: tuple[str, ...], health_url: str | None) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
                                start_new_session=True)
        self.procs[name] = proc
        if health_url is not None:
            wait_until(lambda: http_ok(health_url) or proc.poll() is not None, 30, f"{name} to start")
            if proc.poll() is not None:
                raise AssertionError(f"{name} died: {(self.log_dir / f'{name}.log').read_text()[-2000:]}")

    def start_region(self, region: str) -> None:
        host, port = self.ui[region]
        self._spawn(f"ui-{region}", python_module("regionctl.routing.standin", "--region", region, "--host", host,
                                                  "--port", str(port)), f"http://{host}:{port}/")

    def start(self, name: str) -> None:
        spec = self.specs[name]
        self._spawn(name, spec.argv, spec.health_url)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def set_region_health(self, region: str, healthy: bool) -> None:
        host, port = self.ui[region]
        path = "/actuator/recover" if healthy else "/actuator/fail"
        httpx.post(f"http://{host}:{port}{path}", trust_env=False).raise_for_status()

    # what clients see ---------------------------------------------------------------------------------------------

    @property
    def entry_url(self) -> str:
        return self.plane.entry.url

    def entry_get(self, path: str = "/whoami", cookies: dict[str, str] | None = None) -> httpx.Response:
        with httpx.Client(trust_env=False, cookies=cookies) as client:
            return client.get(self.entry_url + path, timeout=5)

    def new_requests_go_to(self, count: int = 6) -> set[str]:
        """Regions serving ``count`` new requests (no session cookie); {"503"} when the entry refuses."""
        seen = set()
        for _ in range(count):
            response = self.entry_get()
            seen.add(response.json()["region"] if response.status_code == 200 else str(response.status_code))
        return seen

    def dns_query(self, qtype: str = "A") -> DNSRecord:
        query = DNSRecord.question(self.plane.dns_name, qtype)
        query.add_ar(__import__("dnslib").EDNS0(udp_len=1232))
        return DNSRecord.parse(query.send(self.plane.dns.host, self.plane.dns.port, timeout=2))

    def dns_addresses(self) -> set[str] | str:
        reply = self.dns_query()
        if reply.header.rcode != RCODE.NOERROR:
            return RCODE.get(reply.header.rcode)
        return {str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A}
