"""A small synchronous client of the control API, used by the CLI (and by runbooks later).

HTTP failures become our own errors with the API's message, so the CLI prints one line naming the problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from regionctl.config import Paths, Settings
from regionctl.errors import (
    ConfigError,
    ExternalError,
)
from regionctl.routing.plane import HOST, PORT_KEYS
from regionctl.runtime import tls
from regionctl.runtime.httperrors import raise_for_error
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.secrets import control_token


def _registered(settings: Settings) -> dict[str, tuple[str, int]]:
    return PortRegistry(Paths(settings.root).state / "ports.json", settings.base_port).all()


def entry_status(settings: Settings, reason: str) -> dict[str, Any] | None:
    """Routing as the global entry sees it, in the shape of the control API's ``/status`` with what the entry
    cannot know left empty (rules, health timestamps): what ``routing status`` shows while the API is down.
    None when the entry does not answer either."""
    known = _registered(settings).get(PORT_KEYS["entry"])
    if known is None:
        return None
    try:
        response = httpx.get(f"http://{known[0] or HOST}:{known[1]}/_entry/status", timeout=5, trust_env=False)
        response.raise_for_status()
        entry = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    controls = entry.get("controls") or {}
    return {
        "source": "global entry", "note": f"{reason}; showing the global entry's view ({entry.get('controls_note')})",
        "version": entry.get("controls_version"), "routing": entry.get("routing"),
        "regions": [{**r, "control": controls.get(r["region"]),
                     "health": {"healthy": None, "last_ok": None, "detail": r["health"], "checked_at": None}}
                    for r in entry.get("regions", [])],
        "controls": [{"name": name, "state": state} for name, state in controls.items()], "rules": [],
    }


def api_url(settings: Settings) -> str:
    """The control API's address from the port registry; it exists once the global plane was launched."""
    known = _registered(settings)
    if PORT_KEYS["api"] not in known:
        raise ConfigError(f"no routing control API is registered under {settings.root}; start the global plane "
                          "with 'regionctl up'")
    host, port = known[PORT_KEYS["api"]]
    return f"http://{host or HOST}:{port}"


class ControlClient:
    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 5.0,
                 http: httpx.Client | None = None) -> None:
        self.base_url = base_url
        self._token = token
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout_s, trust_env=False,
                                          verify=tls.shared())

    @classmethod
    def from_settings(cls, settings: Settings, token: str | None = None) -> ControlClient:
        """A client carrying ``token`` (an operator's; by default the control token, the first admin)."""
        return cls(api_url(settings), token or control_token(settings))

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, auth: bool = False, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._token}"} if auth and self._token else {}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ExternalError(f"the routing control API at {self.base_url} is not reachable ({type(exc).__name__});"
                                " is the global plane up?") from None
        raise_for_error(response)
        return response.json()

    def status(self) -> dict[str, Any]:
        return dict(self._call("GET", "/status"))

    def state(self) -> dict[str, Any]:
        return dict(self._call("GET", "/state"))

    def change(self, controls: Mapping[str, bool], override: Sequence[str] = (), actor: str | None = None,
               reason: str = "") -> dict[str, Any]:
        """``actor``: on whose behalf, recorded after the token's operator (a runbook execution, say)."""
        body = {"controls": {k: "On" if v else "Off" for k, v in controls.items()}, "override": list(override),
                "reason": reason}
        if actor:
            body["actor"] = actor
        return dict(self._call("POST", "/changes", auth=True, json=body))

    def rules(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/rules"))

    def put_rule(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._call("PUT", f"/rules/{name}", auth=True, json=dict(body)))

    def delete_rule(self, name: str, actor: str | None = None) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/rules/{name}", auth=True, params={"actor": actor} if actor else {}))

    def audit(self, limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
        params: dict[str, int] = {"limit": limit}
        if before_id is not None:
            params["before_id"] = before_id
        return list(self._call("GET", "/audit", params=params))
