"""Ports allocated once per deployment and remembered, so a second ``up`` reuses them and nothing collides."""

from __future__ import annotations

import fcntl
import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from regionctl.errors import ConflictError

log = logging.getLogger("regionctl.ports")
KERNEL_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_ports(path: Path = KERNEL_PORT_RANGE) -> range:
    """The ports the kernel hands to outgoing connections (Linux's default 32768-60999 when it cannot be read)."""
    try:
        low, high = (int(part) for part in path.read_text().split()[:2])
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortRegistry:
    """A JSON file mapping a component key (``us-east-1/pg/orders``) to its host and port."""

    def __init__(self, path: Path, base_port: int, ephemeral: range | None = None) -> None:
        self.path = path
        self.base_port = base_port
        self._ephemeral = ephemeral  # read from the kernel only when a port is allocated (most callers only look up)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, object]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            table = json.loads(self.path.read_text()) if self.path.exists() else {}
            yield table
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(table, indent=2, sort_keys=True))
            tmp.replace(self.path)

    def all(self) -> dict[str, tuple[str, int]]:
        if not self.path.exists():
            return {}
        table = json.loads(self.path.read_text())
        return {key: (str(v["host"]), int(str(v["port"]))) for key, v in table.items()}

    def get(self, key: str, host: str) -> int:
        """The port of ``key`` on ``host``: the remembered one, else the first free one from the base."""
        with self._locked() as table:
            known = table.get(key)
            if known is not None:
                return int(str(known["port"]))
            taken = {int(str(v["port"])) for v in table.values() if v["host"] == host}
            port = self.base_port
            while port in taken or not port_is_free(host, port):
                port += 1
                if port > 65000:
                    raise ConflictError(f"no free port on {host} from {self.base_port}")
            table[key] = {"host": host, "port": port}
        ephemeral = self._ephemeral if self._ephemeral is not None else ephemeral_ports()
        if port in ephemeral:  # free now, but any client's connection may take it before the bind
            log.warning("%s gets port %d, in the kernel's ephemeral range (%d-%d): an outgoing connection can take "
                        "it before %s listens; set base_port below %d", key, port, ephemeral.start,
                        ephemeral.stop - 1, key, ephemeral.start)
        return port

    def release(self, prefix: str) -> None:
        with self._locked() as table:
            for key in [k for k in table if k.startswith(prefix)]:
                del table[key]
