"""``python -m regionctl.runbooks.server``: the runbook engine and its API, one global-plane process.

It also serves the reconciliation reports (``/reconcile/reports``, see ``reconcile/api.py``): runbooks build
and replay them.

On start it resumes every execution the journal has unfinished (a killed engine carries on where it was).
``--bind module:function`` picks the function that builds the ports (default ``regionctl.providers:bind``: the
local or the AWS provider, as the settings say), so tests and staged deployments can run the engine on fakes.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from regionctl.config import Paths, Settings, load_settings
from regionctl.errors import ConfigError
from regionctl.operators.caller import audit_log, operator_store
from regionctl.operators.roles import READ
from regionctl.reconcile.api import router as reconcile_router
from regionctl.runbooks.actions import default_registry
from regionctl.runbooks.api import create_app
from regionctl.runbooks.engine import Engine
from regionctl.runbooks.journal import Journal
from regionctl.runbooks.loader import LIBRARY, RunbookCatalog
from regionctl.runbooks.ports import Ports

DEFAULT_BIND = "regionctl.providers:bind"


def load_binder(spec: str) -> Callable[[Settings], Ports]:
    module_name, _, attr = spec.partition(":")
    try:
        binder: Callable[[Settings], Ports] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--bind {spec}: {exc}") from None
    return binder


def build_app(settings: Settings, bind: str = DEFAULT_BIND) -> FastAPI:
    paths = Paths(settings.root)
    binder = load_binder(bind)

    def build_engine() -> Engine:
        registry = default_registry()
        catalog = RunbookCatalog(registry, [LIBRARY, settings.root / "runbooks"])
        journal = Journal(paths.state / "runbooks.sqlite")
        return Engine(journal, catalog, binder(settings), settings.regions, registry)

    app = create_app(build_engine, operator_store(settings), audit_log(settings))
    reader = app.state.gate.requires(READ)
    app.include_router(reconcile_router(paths.root, reader, _at_risk(settings)))  # the runbooks' reports, at-risk
    return app


def _at_risk(settings: Settings) -> Callable[[str], Any]:
    def read(database: str) -> Any:
        from regionctl.reconcile.service import at_risk
        from regionctl.runtime.network import deployment_network
        from regionctl.runtime.topology import Topology

        topo = Topology(settings)
        return at_risk(topo, deployment_network(topo), database)

    return read


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="regionctl.runbooks.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bind", default=DEFAULT_BIND, help="module:function building the ports")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s runbooks %(levelname)s %(message)s")
    app = build_app(load_settings(), args.bind)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
