"""The runbooks' ports on AWS: ARC routing, Aurora global databases, the reconciliation, the recovery probe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import httpx

from regionctl.config import Settings
from regionctl.errors import ConfigError
from regionctl.providers.aws.application import RegionReadiness
from regionctl.providers.aws.arc import ArcRouting
from regionctl.providers.aws.aurora import AuroraDatabases
from regionctl.providers.aws.clients import ClientFactory, boto3_factory
from regionctl.providers.aws.reconcile import AuroraReconciler
from regionctl.runbooks.ports import Ports, ProbeResult
from regionctl.runbooks.wiring import post_order


def global_write_probe(settings: Settings, databases: AuroraDatabases,
                       post: Callable[..., httpx.Response] = httpx.post) -> Callable[[], ProbeResult]:
    """An order through the shop's global URL (``wiring.post_order``). An answer that names no writer (the
    reference's own shop has no canary order) is credited to the writer Aurora reports for orders at that
    moment, and says so."""
    if settings.aws is None or not settings.aws.probe_url:
        raise ConfigError("aws.probe_url is not set: the runbooks measure recovery by an order through it")
    url = settings.aws.probe_url.rstrip("/") + settings.workload.probe_path

    def probe() -> ProbeResult:
        result = post_order(settings, lambda: url, post, timeout_s=5.0)
        if not result.ok or result.writer is not None:
            return result
        return replace(result, writer=databases.status("orders").writer,
                       detail="writer as Aurora reports it, not named by the order")

    return probe


def bind(settings: Settings, factory: ClientFactory | None = None) -> Ports:
    """The AWS ports of ``settings`` (``factory`` defaults to boto3's standard credential chain)."""
    if settings.aws is None:
        raise ConfigError("provider 'aws' needs [aws] settings")
    factory = factory or boto3_factory(settings.aws.call_timeout_s)
    databases = AuroraDatabases(settings, factory)
    routing = ArcRouting(settings, factory, readiness=RegionReadiness(settings.aws, factory))
    return Ports(databases=databases, routing=routing, reconciler=AuroraReconciler(settings, factory, databases),
                 probes={"global_write": global_write_probe(settings, databases)}, functions={})
