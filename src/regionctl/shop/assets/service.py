"""The assets service: static product images at ``/assets/{image}`` and ``/health.html`` (as the reference's
nginx), plus metrics. Only names of files in the package's image directory are served."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from regionctl.errors import NotFoundError
from regionctl.shop.catalog.seed import PRODUCTS
from regionctl.shop.kit.app import ServiceKit, create_app
from regionctl.shop.kit.readiness import Check
from regionctl.shop.kit.settings import ServiceSettings

IMAGES = Path(__file__).parent / "images"
IMAGE_NAME = re.compile(r"^[a-z0-9_]{1,60}\.svg$")
CACHE = "public, max-age=31536000, immutable"


def load_images(directory: Path = IMAGES) -> dict[str, bytes]:
    """Every image in memory (a few KB each): serving never touches the disk or a caller-made path."""
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.svg")) if IMAGE_NAME.match(p.name)}


def create_assets_app(kit: ServiceKit, images: dict[str, bytes]) -> FastAPI:
    def complete() -> str:
        missing = sorted({p.image for p in PRODUCTS} - set(images))
        if missing:
            raise RuntimeError(f"images missing: {', '.join(missing)}")
        return f"{len(images)} images"

    kit.readiness.add(Check("images", complete))
    app = create_app(kit, title="assets", description="Product images.", health_paths=("/actuator/health",),
                     json_api=False)

    @app.get("/health.html", response_class=HTMLResponse)
    async def health_html() -> HTMLResponse:
        return HTMLResponse("OK", headers={"Cache-Control": "no-cache"})

    @app.get("/assets/{image}")
    async def image(image: str) -> Response:
        body = images.get(image)
        if body is None:
            raise NotFoundError(f"no image named {image!r}")
        return Response(body, media_type="image/svg+xml", headers={"Cache-Control": CACHE})

    return app


def from_settings(settings: ServiceSettings) -> FastAPI:
    return create_assets_app(ServiceKit.create("assets", settings.region), load_images())
