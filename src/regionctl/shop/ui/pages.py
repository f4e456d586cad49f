"""Browsing pages: home, catalog, product, cart, orders; the image proxy and the chaos hooks."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from regionctl.errors import NotFoundError
from regionctl.shop.orders.models import WRITER_HEADER
from regionctl.shop.ui.context import load_cart, render, session_id, ui
from regionctl.shop.ui.views import Pagination, clamp

router = APIRouter()
IMAGE_NAME = re.compile(r"^[a-z0-9_]{1,60}\.svg$")
IMAGE_CACHE = "public, max-age=2592000"  # 30 days, as the reference's ui
PAGE_SIZES = (3, 9)
CANARY_EMAIL = "canary@regionctl.invalid"


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/home", status_code=303)


@router.get("/home", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    products = await ui(request).backends.products(None, 1, 4)
    return await render(request, "home.html", products=products)


@router.get("/catalog", response_class=HTMLResponse)
async def catalog(request: Request, tag: str | None = None, page: str | None = None,
                  size: str | None = None) -> HTMLResponse:
    backends = ui(request).backends
    tag = (tag or "").strip() or None
    page_no, page_size = clamp(page, 1, 1, 100_000), clamp(size, 3, 1, 100)
    tags, products, total = await asyncio.gather(
        backends.tags(), backends.products(tag, page_no, page_size), backends.product_count(tag))
    return await render(request, "catalog.html", tags=tags, tag=tag, products=products,
                        pagination=Pagination(page_no, page_size, total), page_sizes=PAGE_SIZES)


@router.get("/catalog/{product_id}", response_class=HTMLResponse)
async def product(request: Request, product_id: str) -> HTMLResponse:
    found = await ui(request).backends.product(product_id)
    if found is None:
        raise NotFoundError(f"There is no product {product_id} in the catalog.")
    return await render(request, "product.html", product=found)


@router.get("/cart", response_class=HTMLResponse)
async def cart(request: Request) -> HTMLResponse:
    view = await load_cart(request)
    return await render(request, "cart.html", cart=view, cart_count=view.num_items)


@router.post("/cart")
async def add_to_cart(request: Request, productId: Annotated[str, Form(max_length=64)],
                      quantity: Annotated[int, Form(ge=1, le=100)] = 1) -> RedirectResponse:
    """Add at the current catalog price (the price is looked up here, never taken from the form)."""
    backends = ui(request).backends
    found = await backends.product(productId)
    if found is None:
        raise NotFoundError(f"There is no product {productId} in the catalog.")
    await backends.add_to_cart(session_id(request), found["id"], quantity, int(found["price"]))
    return RedirectResponse("/cart", status_code=303)


@router.post("/cart/remove")
async def remove_from_cart(request: Request, productId: Annotated[str, Form(max_length=64)]) -> RedirectResponse:
    await ui(request).backends.remove_from_cart(session_id(request), productId)
    return RedirectResponse("/cart", status_code=303)


@router.get("/orders", response_class=HTMLResponse)
async def orders(request: Request, email: str | None = None, page: str | None = None,
                 size: str | None = None) -> HTMLResponse:
    """Every order in this region's view of the global orders database (the reference ignored the filters)."""
    email = (email or "").strip()[:254] or None
    page_no, page_size = clamp(page, 1, 1, 100_000), clamp(size, 20, 1, 200)
    rows, total = await ui(request).backends.list_orders(email, page_no, page_size)
    return await render(request, "orders.html", orders=rows, email=email or "",
                        pagination=Pagination(page_no, page_size, total))


@router.get("/assets/{image}")
async def image(request: Request, image: str) -> Response:
    """Images proxied from the assets service and kept in memory (there are six)."""
    if not IMAGE_NAME.match(image):
        raise NotFoundError(f"no image named {image!r}")
    ctx = ui(request)
    cached = ctx.images.get(image)
    if cached is None:
        fetched = await ctx.backends.image(image)
        if fetched is None:
            raise NotFoundError(f"no image named {image!r}")
        ctx.images[image] = cached = fetched
    return Response(cached[0], media_type=cached[1], headers={"Cache-Control": IMAGE_CACHE})


@router.post("/actuator/fail-cart", include_in_schema=False)
async def fail_cart(request: Request) -> PlainTextResponse:
    """Chaos: make this region's carts report DOWN (the reference's hook)."""
    await ui(request).backends.carts.call("POST", "/actuator/fail")
    return PlainTextResponse("OK")


@router.post("/actuator/recover-cart", include_in_schema=False)
async def recover_cart(request: Request) -> PlainTextResponse:
    """Undo ``fail-cart`` (the reference had no way back short of a restart)."""
    await ui(request).backends.carts.call("POST", "/actuator/recover")
    return PlainTextResponse("OK")


@router.post("/actuator/canary-order", include_in_schema=False)
async def canary_order(request: Request) -> JSONResponse:
    """One real order of the first catalog product, for canaries and a runbook's recovery probe: "the shop takes
    orders" measured end to end (catalog read, order written on the global writer). The caller's Idempotency-Key
    makes a retried probe the same order."""
    backends = ui(request).backends
    key = request.headers.get("Idempotency-Key") or f"canary-{uuid.uuid4()}"
    products = await backends.products(None, 1, 1)
    if not products:
        raise NotFoundError("the catalog has no product to order")
    first = products[0]
    order = {"email": CANARY_EMAIL, "firstName": "Canary", "lastName": "Order",
             "items": [{"productId": first["id"], "quantity": 1, "price": first["price"], "name": first["name"]}]}
    created, headers = await backends.orders.call_with_headers("POST", "/orders", json=order,
                                                               headers={"Idempotency-Key": key})
    return JSONResponse({"orderId": created["id"], "region": created["region"], "writer": headers.get(WRITER_HEADER)})
