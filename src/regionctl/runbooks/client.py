"""A small HTTP client of the runbook API, used by the CLI; server errors come back as regionctl errors."""

from __future__ import annotations

from typing import Any

import httpx

from regionctl.config import Settings
from regionctl.errors import ExternalError
from regionctl.operators.caller import caller_token
from regionctl.runbooks.launch import engine_url
from regionctl.runtime import tls
from regionctl.runtime.httperrors import raise_for_error


class RunbookClient:
    def __init__(self, base_url: str, token: str | None, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self._token = token
        self._http = httpx.Client(base_url=base_url, timeout=timeout, verify=tls.shared())

    @classmethod
    def for_settings(cls, settings: Settings) -> RunbookClient:
        url = engine_url(settings)
        if url is None:
            raise ExternalError("the runbook engine has not been started in this deployment (run `regionctl up`)")
        return cls(url, caller_token(settings))

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            response = self._http.request(method, path, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ExternalError(f"the runbook engine at {self.base_url} is not reachable ({type(exc).__name__}); "
                                "is `regionctl up` running?") from None
        raise_for_error(response, extra=("problems",))
        return response.json()

    def runbooks(self) -> Any:
        return self._call("GET", "/runbooks")

    def start(self, runbook: str, parameters: dict[str, Any], recovery_probe: str | None = None,
              recovery_after: str | None = None) -> Any:
        """Start an execution as the caller (the token's operator); ``recovery_probe``/``recovery_after`` override
        the runbook's recovery measure."""
        body: dict[str, Any] = {"runbook": runbook, "parameters": parameters}
        if recovery_probe is not None:
            body |= {"recovery_probe": recovery_probe, "recovery_after": recovery_after}
        return self._call("POST", "/executions", body)

    def executions(self, status: str | None = None, limit: int = 50) -> Any:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return self._call("GET", "/executions", params=params)

    def execution(self, execution_id: str) -> Any:
        return self._call("GET", f"/executions/{execution_id}")

    def history(self, execution_id: str, after: int = 0) -> Any:
        return self._call("GET", f"/executions/{execution_id}/history", params={"after": after})

    def decide(self, execution_id: str, approved: bool, comment: str, step: str | None) -> Any:
        """Approve or decline as the caller: the approver is whoever the token belongs to."""
        verb = "approve" if approved else "decline"
        return self._call("POST", f"/executions/{execution_id}/{verb}", {"comment": comment, "step": step})

    def control(self, execution_id: str, verb: str, step: str | None = None) -> Any:
        body: dict[str, Any] = {}
        if step is not None:
            body["step"] = step
        return self._call("POST", f"/executions/{execution_id}/{verb}", body)
