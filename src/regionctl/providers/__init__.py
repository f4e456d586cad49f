"""Providers: the world the runbooks operate, behind the ports of ``runbooks.ports``.

``local`` (the embedded default) is the agents and control API on this machine (``runbooks.wiring``); ``aws``
drives the reference system's own deployment (ARC routing controls, Aurora global databases, ECS) with the same
runbooks (``providers.aws``). Which one runs is a setting (``provider``); ``bind`` is the runbook server's default
``--bind``, so the engine itself never knows which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regionctl.config import Settings
    from regionctl.runbooks.ports import Ports


def bind(settings: Settings) -> Ports:
    """The ports of the provider the settings name."""
    if settings.provider == "aws":
        from regionctl.providers.aws.ports import bind as bind_aws

        return bind_aws(settings)
    from regionctl.runbooks.wiring import bind as bind_local

    return bind_local(settings)
