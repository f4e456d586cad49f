"""What every command needs, built lazily once per process: settings, then the deployment."""

from __future__ import annotations

import os
from functools import lru_cache

from regionctl.config import Paths, Settings, load_settings
from regionctl.runtime import pgpass
from regionctl.runtime.topology import Topology


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The deployment's settings; the command's superuser connections find their password in its file."""
    loaded = load_settings()
    os.environ.setdefault(pgpass.ENV, str(Paths(loaded.root).superuser_passfile))
    return loaded


@lru_cache(maxsize=1)
def topology() -> Topology:
    return Topology(settings())
