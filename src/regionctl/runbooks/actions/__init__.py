"""The actions a runbook step can run, and the registry the loader and the engine share."""

from __future__ import annotations

from regionctl.runbooks.actions.base import Action, ActionRegistry
from regionctl.runbooks.actions.generic import Approve, HttpRequest, Python, RunRunbook, Sleep
from regionctl.runbooks.actions.platform import (
    DbFailover,
    DbPreserve,
    DbRebuild,
    DbRestore,
    DbSnapshot,
    DbSwitchover,
    ReconcileReplay,
    ReconcileReport,
    RoutingSet,
)
from regionctl.runbooks.actions.wait import WaitUntil


def builtin_actions() -> list[Action]:
    return [
        Sleep(), HttpRequest(), Python(), Approve(), RunRunbook(), WaitUntil(),
        RoutingSet(), DbSwitchover(), DbFailover(), DbPreserve(), DbRebuild(), DbSnapshot(), DbRestore(),
        ReconcileReport(), ReconcileReplay(),
    ]


def default_registry() -> ActionRegistry:
    return ActionRegistry(builtin_actions())
