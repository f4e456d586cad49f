"""The HTTP client of one region's agent: the global plane's only way to act on that region's instances.

An agent that does not answer raises ``Unreachable``: nothing is known about its region then, which callers
must not confuse with "stopped". Error answers come back as the exception family of their HTTP status
(``runtime.httperrors.raise_for_error``): input, conflict, not found, timeout; anything the agent could not do itself
(including its own calls to another agent that failed) is an ``ExternalError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from regionctl.errors import Unreachable, first_line
from regionctl.runtime import tls
from regionctl.runtime.httperrors import raise_for_error

LONG_CALL_S = 3600.0  # rewinds, clones, snapshots, restores
PROBE_S = 2.0  # a cut-off region holds bytes instead of refusing: a long call first checks the agent answers
STREAM_END, STREAM_ERROR = "#regionctl-end", "#regionctl-error "  # last line of a streamed text answer


class AgentClient:
    def __init__(self, region: str, base_url: str, token: str, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.region = region
        self.base_url = base_url
        self.timeout = timeout
        self._http = httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {token}"}, verify=tls.shared(),
                                  timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """One request; the answer's JSON, or the agent's error raised as ours. A call allowed to take longer
        than the client's timeout first makes sure the agent answers at all (else it would wait that long)."""
        if timeout is not None and timeout > self.timeout:
            self.probe()
        try:
            response = self._http.request(method, path, json=body, timeout=timeout or self.timeout)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        raise_for_error(response, f"agent of {self.region}: ")
        return response.json()

    def probe(self) -> None:
        """Raise Unreachable unless the agent answers ``/health`` within a few seconds."""
        try:
            self._http.get("/health", timeout=min(self.timeout, PROBE_S)).raise_for_status()
        except httpx.HTTPError as exc:
            raise Unreachable(f"the agent of {self.region} at {self.base_url} does not answer: "
                              f"{first_line(exc)}") from None

    def stream(self, method: str, path: str, body: dict[str, Any] | None = None,
               timeout: float = 120.0) -> Iterator[bytes]:
        """A streamed answer's bytes (tar files, WAL files, pg_waldump output)."""
        self.probe()
        try:
            with self._http.stream(method, path, json=body, timeout=httpx.Timeout(timeout, connect=self.timeout)) \
                    as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for_error(response, f"agent of {self.region}: ")
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def lines(self, method: str, path: str, body: dict[str, Any] | None = None) -> Iterator[str]:
        """A streamed answer line by line."""
        pending = b""
        for chunk in self.stream(method, path, body):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode() + "\n"
        if pending:
            yield pending.decode()

    def _unreachable(self, exc: httpx.TransportError) -> Unreachable:
        said = "did not answer in time" if isinstance(exc, httpx.TimeoutException) else "cannot be reached"
        return Unreachable(f"the agent of {self.region} at {self.base_url} {said}: {first_line(exc)}")
