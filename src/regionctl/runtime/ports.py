"""Ports allocated once per deployment and remembered, so a second ``up`` reuses them and nothing collides."""

from __future__ import annotations

import fcntl
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from regionctl.errors import ConflictError


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

    def __init__(self, path: Path, base_port: int) -> None:
        self.path = path
        self.base_port = base_port

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
            return port

    def release(self, prefix: str) -> None:
        with self._locked() as table:
            for key in [k for k in table if k.startswith(prefix)]:
                del table[key]
