"""What every command needs, built lazily once per process: settings, then the deployment."""

from __future__ import annotations

from functools import lru_cache

from regionctl.config import Settings, load_settings
from regionctl.runtime.topology import Topology


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()


@lru_cache(maxsize=1)
def topology() -> Topology:
    return Topology(settings())
