"""The checkout API models (the reference's CheckoutRequest, ShippingRates, Checkout, CheckoutSubmitted)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from regionctl.shop.orders.models import EMAIL

Money = Annotated[int, Field(ge=0, le=1_000_000_000, description="whole dollars")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
TOKEN_PATTERN = r"^[A-Za-z0-9-]{1,64}$"


class CheckoutItem(BaseModel):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(max_length=100)] = ""
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    unitCost: Money
    totalCost: Money = Field(description="quantity x unitCost")
    imageUrl: Annotated[str, Field(max_length=200)] = ""


class ShippingAddress(BaseModel):
    firstName: Name
    lastName: Name
    address1: Name
    address2: Annotated[str, Field(max_length=100)] = ""
    city: Name
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="two upper-case letters")]
    zip: Annotated[str, Field(pattern=r"^[0-9]{5}$", description="five digits")]


class CheckoutRequest(BaseModel):
    customerEmail: Annotated[str, Field(max_length=254)] | None = None
    items: Annotated[list[CheckoutItem], Field(max_length=100)] = []
    shippingAddress: ShippingAddress | None = None
    subtotal: Money | None = Field(None, description="optional; when given it must equal the sum of totalCost")
    deliveryOptionToken: Annotated[str, Field(pattern=TOKEN_PATTERN)] | None = None

    @field_validator("customerEmail")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value


class ShippingOption(BaseModel):
    name: str
    amount: int
    token: str
    estimatedDays: int


class ShippingRates(BaseModel):
    shipmentId: str
    rates: list[ShippingOption]


class Checkout(BaseModel):
    request: CheckoutRequest
    shippingRates: ShippingRates
    paymentId: str
    paymentToken: str
    subtotal: int
    shipping: int = Field(description="-1 until a delivery option is chosen")
    tax: int = Field(description="-1 until a shipping address is given")
    total: int = Field(description="subtotal + tax + shipping (the reference left shipping out)")


class CheckoutSubmitted(BaseModel):
    orderId: str
    customerEmail: str
