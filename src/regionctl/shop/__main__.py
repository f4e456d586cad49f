"""``python -m regionctl.shop <service>``: run one shop service, configured by environment variables."""

from __future__ import annotations

import importlib
import socket
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

    from regionctl.shop.kit import jsoncodec
    from regionctl.shop.kit.http import SERVER_KEEPALIVE_S
    from regionctl.shop.kit.logs import configure_logging

    jsoncodec.install()

    try:
        settings, app = build_app(argv[0])
    except RegionctlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    configure_logging(argv[0], settings.region, settings.log_level)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=5, timeout_keep_alive=SERVER_KEEPALIVE_S, server_header=False)
    if settings.worker_port is None:
        uvicorn.Server(config).run()
        return 0
    try:
        sockets = [listening(settings.host, settings.port, shared=True), listening(settings.host, settings.worker_port)]
    except OSError as exc:
        print(f"error: cannot listen on {settings.host}:{settings.port} and :{settings.worker_port}: {exc}",
              file=sys.stderr)
        return 1
    uvicorn.Server(config).run(sockets=sockets)
    return 0


def listening(host: str, port: int, shared: bool = False) -> socket.socket:
    """A listening socket; ``shared`` lets the service's other workers bind the same address (SO_REUSEPORT), and
    the kernel spreads new connections over them."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
