"""The 4-step guest checkout (1 Customer, 2 Shipping, 3 Payment, 4 Review) and the confirmation.

The checkout's state lives in the checkout service (keyed by the session), so each step reads it, changes one
part and stores it again; a step reached without its predecessors sends the visitor back to the start.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from regionctl.shop.kit.http import ServiceCallError
from regionctl.shop.ui.context import load_cart, render, session_id, ui
from regionctl.shop.ui.forms import US_STATES, delivery_token_problem, validate_shipping

log = logging.getLogger("regionctl.shop.ui")
router = APIRouter()
Json = dict[str, Any]


def _restart() -> RedirectResponse:
    return RedirectResponse("/checkout", status_code=303)


def _customer_values(checkout: Json | None) -> dict[str, str]:
    """Step 1 prefilled from a checkout in progress (back button, or a second purchase)."""
    request = (checkout or {}).get("request", {})
    values = dict(request.get("shippingAddress") or {})
    values["email"] = request.get("customerEmail") or ""
    return {k: str(v) for k, v in values.items() if v is not None}


@router.get("/checkout", response_class=HTMLResponse)
async def start(request: Request) -> Response:
    """Step 1: (re)create the checkout from the cart, ask who and where."""
    backends = ui(request).backends
    cart = await load_cart(request)
    if not cart.lines:
        return RedirectResponse("/cart", status_code=303)
    previous = await backends.checkout_state(session_id(request))
    checkout = await backends.update_checkout(session_id(request),
                                              {"items": cart.checkout_items(), "subtotal": cart.subtotal})
    return await render(request, "checkout_customer.html", checkout=checkout, step=1,
                        values=_customer_values(previous), errors={}, states=US_STATES, cart_count=cart.num_items)


@router.post("/checkout", response_class=HTMLResponse)
async def customer(request: Request) -> Response:
    """Step 1 submitted: validate, store email and address; step 2 offers the delivery options."""
    backends = ui(request).backends
    form = validate_shipping({k: str(v) for k, v in (await request.form()).items()})
    checkout = await backends.checkout_state(session_id(request))
    if checkout is None:
        return _restart()
    if not form.valid:
        return await render(request, "checkout_customer.html", status_code=400, checkout=checkout, step=1,
                            values=form.values, errors=form.errors, states=US_STATES)
    body = {**checkout["request"], "customerEmail": form.values["email"], "shippingAddress": form.address()}
    checkout = await backends.update_checkout(session_id(request), body)
    return await render(request, "checkout_delivery.html", checkout=checkout, step=2, error=None,
                        selected=checkout["request"].get("deliveryOptionToken"))


@router.post("/checkout/delivery", response_class=HTMLResponse)
async def delivery(request: Request, token: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Step 2 submitted: store the delivery option; step 3 asks for a card (never sent anywhere)."""
    backends = ui(request).backends
    checkout = await backends.checkout_state(session_id(request))
    if checkout is None or checkout["request"].get("shippingAddress") is None:
        return _restart()
    problem = delivery_token_problem(token, [r["token"] for r in checkout["shippingRates"]["rates"]])
    if problem:
        return await render(request, "checkout_delivery.html", status_code=400, checkout=checkout, step=2,
                            error=problem, selected=None)
    checkout = await backends.update_checkout(session_id(request),
                                              {**checkout["request"], "deliveryOptionToken": token})
    return await render(request, "checkout_payment.html", checkout=checkout, step=3)


@router.post("/checkout/payment", response_class=HTMLResponse)
async def payment(request: Request) -> Response:
    """Step 3 submitted: the card fields are ignored, as in the reference; step 4 reviews the order."""
    checkout = await ui(request).backends.checkout_state(session_id(request))
    if checkout is None or checkout["shipping"] < 0 or checkout["tax"] < 0:
        return _restart()
    return await render(request, "checkout_review.html", checkout=checkout, step=4)


@router.post("/checkout/confirm", response_class=HTMLResponse)
async def confirm(request: Request) -> Response:
    """Submit the checkout (one order, however often this is retried), then empty the cart."""
    backends = ui(request).backends
    try:
        submitted = await backends.submit_checkout(session_id(request))
    except ServiceCallError as exc:
        if exc.status == 404:
            return RedirectResponse("/cart", status_code=303)
        if exc.status == 409:
            return _restart()
        raise
    try:
        await backends.clear_cart(session_id(request))
    except ServiceCallError as exc:  # the order exists; a stale cart is the lesser evil
        log.warning("order %s placed but the cart was not emptied: %s", submitted["orderId"], exc)
    return await render(request, "order.html", order_id=submitted["orderId"],
                        email=submitted["customerEmail"], cart_count=0)
