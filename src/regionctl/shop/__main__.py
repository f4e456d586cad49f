"""``python -m regionctl.shop <service>``: run one shop service, configured by environment variables."""

from __future__ import annotations

import importlib
import sys

from regionctl.errors import RegionctlError
from regionctl.shop import SERVICES


def build_app(service: str):
    """The FastAPI app of ``service`` built from the environment (raises ConfigError naming what is missing)."""
    from regionctl.shop.kit.settings import load_service_settings

    if service not in SERVICES:
        from regionctl.errors import InputError

        raise InputError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    settings = load_service_settings()
    module = importlib.import_module(f"regionctl.shop.{service}.service")
    return settings, module.from_settings(settings)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(f"usage: python -m regionctl.shop <{'|'.join(SERVICES)}>  (configured by environment variables)",
              file=sys.stderr)
        return 2
    import uvicorn

    from regionctl.shop.kit.http import SERVER_KEEPALIVE_S
    from regionctl.shop.kit.logs import configure_logging

    try:
        settings, app = build_app(argv[0])
    except RegionctlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    configure_logging(argv[0], settings.region, settings.log_level)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5, timeout_keep_alive=SERVER_KEEPALIVE_S, server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
