"""How the entry and DNS learn the routing controls: poll the control API, remember the last state on disk.

Static stability: when the control API is down, a data-plane process keeps the last state it read (and finds it
again in its cache file after a restart). With no state at all it routes nowhere rather than guess.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx


@dataclass(frozen=True)
class KnownControls:
    states: Mapping[str, bool] | None  # None: never read and nothing cached
    version: int
    read_at: float  # epoch seconds of the last successful read (0 if never)
    source_up: bool
    note: str


class ControlSource(Protocol):
    def current(self) -> KnownControls: ...

    async def run(self) -> None: ...


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class HttpControlSource:
    """Reads ``GET /state`` every ``poll_s`` seconds; ``listener`` hears every change of what is known."""

    def __init__(self, api_url: str, cache_path: Path, poll_s: float,
                 listener: Callable[[KnownControls], None] | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.cache_path = cache_path
        self.poll_s = poll_s
        self.listener = listener
        self._known = self._load_cache()

    def _load_cache(self) -> KnownControls:
        try:
            data = json.loads(self.cache_path.read_text())
            states = {str(k): v == "On" for k, v in data["controls"].items()}
            return KnownControls(states, int(data["version"]), float(data["read_at"]), False,
                                 f"last known state from {self.cache_path.name} (version {data['version']})")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return KnownControls(None, -1, 0.0, False, "no routing control state read yet")

    def current(self) -> KnownControls:
        return self._known

    def _set(self, known: KnownControls) -> None:
        changed = (known.states, known.version, known.source_up) != (
            self._known.states, self._known.version, self._known.source_up)
        self._known = known
        if changed and self.listener is not None:
            self.listener(known)

    async def poll_once(self, client: httpx.AsyncClient) -> None:
        try:
            response = await client.get(f"{self.api_url}/state", timeout=max(0.2, min(2.0, self.poll_s * 2)))
            response.raise_for_status()
            data = response.json()
            states = {str(k): v == "On" for k, v in data["controls"].items()}
            version = int(data["version"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            old = self._known
            age = f", read {time.time() - old.read_at:.0f} s ago" if old.read_at else ""
            note = f"control API unreachable ({type(exc).__name__}); " + (
                f"serving the last known state (version {old.version}{age})" if old.states is not None
                else "no state known")
            self._set(KnownControls(old.states, old.version, old.read_at, False, note))
            return
        now = time.time()
        if version != self._known.version or states != self._known.states:
            _write_atomic(self.cache_path, json.dumps(
                {"version": version, "read_at": now, "controls": {k: "On" if v else "Off" for k, v in states.items()}}))
        self._set(KnownControls(states, version, now, True, f"read from the control API (version {version})"))

    async def run(self) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            while True:
                started = time.monotonic()
                await self.poll_once(client)
                await asyncio.sleep(max(0.0, self.poll_s - (time.monotonic() - started)))
