"""boto3 clients for the AWS provider, made in one place: timeouts, retries, and what a failed call says.

A ``ClientFactory`` is the seam tests use: they hand in clients wrapped by botocore's Stubber (every request and
response checked against the service's model) or moto's, never a hand-written fake of an SDK.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from regionctl.errors import ConfigError, ExternalError, NotFoundError, Unreachable

ClientFactory = Callable[..., Any]
"""``factory(service, region, endpoint_url=None) -> botocore client``."""

NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "GlobalClusterNotFoundFault", "DBClusterNotFoundFault",
                             "DBClusterSnapshotNotFoundFault", "DBInstanceNotFound", "NoSuchHealthCheck",
                             "ClusterNotFoundException", "ServiceNotFoundException"})

UNAVAILABLE_CODES = frozenset({"EndpointTemporarilyUnavailableException", "InternalServerException",
                               "ThrottlingException", "ServiceUnavailable", "RequestTimeout"})


def boto3_factory(call_timeout_s: float, max_attempts: int = 3) -> ClientFactory:
    """Clients from boto3's default session (the standard credential chain), cached per service, region and
    endpoint; botocore clients are thread-safe, sessions are not, so creation is serialised."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigError("provider 'aws' needs boto3: pip install 'regionctl[aws]'") from None
    session = boto3.session.Session()
    lock = threading.Lock()
    cache: dict[tuple[str, str, str | None, int], Any] = {}

    def factory(service: str, region: str, endpoint_url: str | None = None, attempts: int = max_attempts) -> Any:
        key = (service, region, endpoint_url, attempts)
        with lock:
            if key not in cache:
                config = Config(connect_timeout=call_timeout_s, read_timeout=call_timeout_s,
                                retries={"mode": "standard", "max_attempts": attempts})
                cache[key] = session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)
            return cache[key]

    return factory


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (None for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "") or None
    return None


def describe(exc: BaseException) -> str:
    """What a failed call says, without request ids or signatures: ``Code: message``."""
    code = error_code(exc)
    if code is not None:
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message") or "").strip()
        return f"{code}: {message}" if message else code
    return f"{type(exc).__name__}: {exc}"


def unreachable(exc: BaseException) -> bool:
    """No answer at all (connection refused, timed out, endpoint down): nothing is known, try elsewhere."""
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import ReadTimeoutError
    except ImportError:  # pragma: no cover - boto3 is there whenever a client is
        return False
    return isinstance(exc, BotoConnectionError | ReadTimeoutError) or error_code(exc) in UNAVAILABLE_CODES


def translate(exc: BaseException, what: str) -> Exception:
    """A botocore failure as the platform's error: not found, no answer, or an AWS refusal (named)."""
    if error_code(exc) in NOT_FOUND_CODES:
        return NotFoundError(f"{what}: {describe(exc)}")
    if unreachable(exc):
        return Unreachable(f"{what}: {describe(exc)}")
    return ExternalError(f"{what}: {describe(exc)}")
