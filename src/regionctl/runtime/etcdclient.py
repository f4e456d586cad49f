"""A small client of etcd's v3 JSON gateway over httpx: leases, and keys changed only by compare-and-swap.

The consensus is etcd's; this only speaks its documented HTTP/JSON API (``/v3/lease/*``, ``/v3/kv/*``; keys and
values base64, 64-bit integers as strings). Like etcd's own clients it knows several members and moves to the
next when one does not answer (the local member first: a member can be up yet unable to reach the leader in a
partial partition). Every try has a short timeout: a member cut off by the link holds bytes instead of refusing
them, and a lease keeper must learn that it cannot renew in time to fence.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from regionctl.errors import Unreachable, first_line
from regionctl.runtime import tls


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(b64: str) -> str:
    return base64.b64decode(b64).decode()


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    lease: int  # 0 when the key has no lease
    mod_revision: int


class Etcd:
    def __init__(self, urls: str | list[str], timeout: float = 1.0, transport: httpx.BaseTransport | None = None
                 ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.url = self.urls[0]
        self._http = httpx.Client(timeout=timeout, transport=transport, trust_env=False, verify=tls.shared())

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The first member that answers, the one that answered last time tried first."""
        problems = []
        for url in sorted(self.urls, key=lambda u: u != self.url):
            try:
                data = self._post_to(url, path, body)
            except Unreachable as exc:
                problems.append(str(exc))
                continue
            self.url = url
            return data
        raise Unreachable("; ".join(problems))

    def _post_to(self, url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(url + path, json=body)
            data: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unreachable(f"etcd at {url} does not answer ({first_line(exc)})") from None
        if response.status_code >= 400 or "error" in data:  # a stream endpoint reports errors in its body
            error = data.get("error", data)
            raise Unreachable(f"etcd at {url}: {error.get('message', error) if isinstance(error, dict) else error}")
        return data.get("result", data)

    # ----- leases -----------------------------------------------------------------------------------------
    def grant(self, ttl_s: int) -> int:
        return int(self._post("/v3/lease/grant", {"TTL": str(ttl_s)})["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew ``lease``; return the TTL etcd now gives it (0: it has expired)."""
        return int(self._post("/v3/lease/keepalive", {"ID": str(lease)}).get("TTL", 0))

    def revoke(self, lease: int) -> None:
        self._post("/v3/lease/revoke", {"ID": str(lease)})

    # ----- keys -------------------------------------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        kvs = self._post("/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
        if not kvs:
            return None
        kv = kvs[0]
        return KeyValue(key, _text(kv.get("value", "")), int(kv.get("lease", 0)), int(kv.get("mod_revision", 0)))

    def put_if(self, key: str, value: str, lease: int, expect: str | None) -> bool:
        """Put ``key`` = ``value`` (attached to ``lease``) only if it is absent (``expect`` None) or holds
        ``expect``; return whether it did."""
        compare = ({"target": "VERSION", "key": _b64(key), "result": "EQUAL", "version": "0"} if expect is None
                   else {"target": "VALUE", "key": _b64(key), "result": "EQUAL", "value": _b64(expect)})
        put = {"request_put": {"key": _b64(key), "value": _b64(value), "lease": str(lease)}}
        return bool(self._post("/v3/kv/txn", {"compare": [compare], "success": [put]}).get("succeeded", False))
