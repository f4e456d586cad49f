"""What every ui page needs: the backends, the templates, the region banner, and a helper to render a page."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from regionctl.shop.kit.http import ServiceCallError
from regionctl.shop.ui.clients import Backends
from regionctl.shop.ui.views import CartView, cart_view

log = logging.getLogger("regionctl.shop.ui")
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass
class UiContext:
    region: str
    banner: str
    backends: Backends
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES)))
    images: dict[str, tuple[bytes, str]] = field(default_factory=dict)


def ui(request: Request) -> UiContext:
    return request.app.state.ui


def session_id(request: Request) -> str:
    return str(request.state.session_id)


async def load_cart(request: Request) -> CartView:
    """The visitor's cart with product names and images from the catalog."""
    backends = ui(request).backends
    cart = await backends.cart(session_id(request))
    ids = [item["itemId"] for item in cart.get("items", [])]
    products = await asyncio.gather(*(backends.product(i) for i in ids))
    return cart_view(cart, dict(zip(ids, products, strict=True)))


async def cart_count(request: Request) -> int | None:
    """The navbar badge; a carts outage shows no number rather than failing the page."""
    try:
        cart = await ui(request).backends.cart(session_id(request))
    except ServiceCallError as exc:
        log.warning("cart badge unavailable: %s", exc)
        return None
    return sum(int(i["quantity"]) for i in cart.get("items", []))


async def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    ctx = ui(request)
    if "cart_count" not in context:
        checkout = context.get("checkout")
        if checkout is not None:  # during checkout the cart is what is being checked out: no extra call
            context["cart_count"] = sum(int(i["quantity"]) for i in checkout["request"]["items"])
        else:
            context["cart_count"] = await cart_count(request)
    page = {"region": ctx.region, "banner": ctx.banner, **context}
    return ctx.templates.TemplateResponse(request, template, page, status_code=status_code)
