"""Pricing a checkout and deciding whether it can be submitted: pure functions, integer dollars."""

from __future__ import annotations

import random
import string

from regionctl.errors import ConflictError, InputError
from regionctl.shop.checkout.models import Checkout, CheckoutRequest, ShippingOption, ShippingRates

TAX_PERCENT = 5
RATES = (("Priority Mail", 5, "priority-mail", 10), ("Priority Mail Express", 15, "priority-mail-express", 5))
ALNUM = string.ascii_letters + string.digits


def tax(subtotal: int, has_address: bool) -> int:
    """5% of the subtotal rounded down, once there is an address to tax; -1 before."""
    return subtotal * TAX_PERCENT // 100 if has_address else -1


def shipping(rates: ShippingRates, token: str | None) -> int:
    """The amount of the chosen rate; -1 while none (or an unknown one) is chosen."""
    return next((r.amount for r in rates.rates if token is not None and r.token == token), -1)


def total(subtotal: int, tax_amount: int, shipping_amount: int) -> int:
    """What the customer pays: subtotal, tax and shipping (the reference forgot shipping)."""
    return subtotal + max(tax_amount, 0) + max(shipping_amount, 0)


def subtotal(request: CheckoutRequest) -> int:
    """The sum of the line totals; each line and a subtotal the client sent must add up."""
    ids = [i.id for i in request.items]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise InputError(f"items: {', '.join(twice)} listed more than once; send one line with its quantity")
    for item in request.items:
        if item.totalCost != item.quantity * item.unitCost:
            raise InputError(f"items: {item.id} totalCost {item.totalCost} is not quantity x unitCost = "
                             f"{item.quantity * item.unitCost}")
    amount = sum(i.totalCost for i in request.items)
    if request.subtotal is not None and request.subtotal != amount:
        raise InputError(f"subtotal: {request.subtotal} does not match the items, which add up to {amount}")
    return amount


def random_id(length: int, rng: random.Random) -> str:
    """``length`` characters of ALNUM from the rng's bytes: one read of the system's randomness per id (a choice
    per character made one each: 80 per checkout update), and no character likelier than another."""
    unbiased = 256 - 256 % len(ALNUM)
    chars: list[str] = []
    while len(chars) < length:
        chars.extend(ALNUM[b % len(ALNUM)] for b in rng.randbytes(length) if b < unbiased)
    return "".join(chars[:length])


def shipping_rates(prefix: str, rng: random.Random) -> ShippingRates:
    """The reference's mock shipping service: two rates, names optionally prefixed."""
    return ShippingRates(shipmentId=random_id(32, rng), rates=[
        ShippingOption(name=f"{prefix}{name}", amount=amount, token=token, estimatedDays=days)
        for name, amount, token, days in RATES
    ])


def price(request: CheckoutRequest, prefix: str, rng: random.Random) -> Checkout:
    """A checkout recomputed from scratch for ``request``."""
    amount = subtotal(request)
    rates = shipping_rates(prefix, rng)
    tax_amount = tax(amount, request.shippingAddress is not None)
    shipping_amount = shipping(rates, request.deliveryOptionToken)
    return Checkout(request=request, shippingRates=rates, paymentId=random_id(16, rng),
                    paymentToken=random_id(32, rng), subtotal=amount, shipping=shipping_amount, tax=tax_amount,
                    total=total(amount, tax_amount, shipping_amount))


def missing_for_submit(checkout: Checkout) -> list[str]:
    """What still has to be given before the checkout can become an order (empty when complete)."""
    missing = []
    if not checkout.request.items:
        missing.append("items")
    if not checkout.request.customerEmail:
        missing.append("customerEmail")
    if checkout.request.shippingAddress is None:
        missing.append("shippingAddress")
    if checkout.shipping < 0:
        missing.append("deliveryOptionToken")
    return missing


def require_complete(customer_id: str, checkout: Checkout) -> None:
    missing = missing_for_submit(checkout)
    if missing:
        raise ConflictError(f"checkout of {customer_id} cannot be submitted yet: missing {', '.join(missing)}")


def order_payload(checkout: Checkout) -> dict[str, object]:
    """The order the checkout becomes (unit prices as ``price``; the reference sent line totals)."""
    request = checkout.request
    address = request.shippingAddress
    return {
        "email": request.customerEmail,
        "firstName": address.firstName if address else "",
        "lastName": address.lastName if address else "",
        "items": [{"productId": i.id, "quantity": i.quantity, "price": i.unitCost, "name": i.name}
                  for i in request.items],
        "subtotal": checkout.subtotal,
        "tax": max(checkout.tax, 0),
        "shipping": max(checkout.shipping, 0),
        "total": checkout.total,
    }
