"""Checkout form validation, as the reference's ShippingAddressRequest and delivery token rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from regionctl.shop.orders.models import EMAIL

ZIP = re.compile(r"^[0-9]{5}$")
STATE = re.compile(r"^[A-Z]{2}$")
TOKEN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
REQUIRED = ("firstName", "lastName", "email", "address1", "city")
FIELDS = (*REQUIRED, "address2", "state", "zip")
LABELS = {"firstName": "First name", "lastName": "Last name", "email": "Email", "address1": "Address",
          "city": "City", "address2": "Address 2", "state": "State", "zip": "Zip"}
US_STATES = (
    ("AL", "Alabama"), ("AK", "Alaska"), ("AZ", "Arizona"), ("AR", "Arkansas"), ("CA", "California"),
    ("CO", "Colorado"), ("CT", "Connecticut"), ("DE", "Delaware"), ("DC", "District Of Columbia"),
    ("FL", "Florida"), ("GA", "Georgia"), ("HI", "Hawaii"), ("ID", "Idaho"), ("IL", "Illinois"), ("IN", "Indiana"),
    ("IA", "Iowa"), ("KS", "Kansas"), ("KY", "Kentucky"), ("LA", "Louisiana"), ("ME", "Maine"), ("MD", "Maryland"),
    ("MA", "Massachusetts"), ("MI", "Michigan"), ("MN", "Minnesota"), ("MS", "Mississippi"), ("MO", "Missouri"),
    ("MT", "Montana"), ("NE", "Nebraska"), ("NV", "Nevada"), ("NH", "New Hampshire"), ("NJ", "New Jersey"),
    ("NM", "New Mexico"), ("NY", "New York"), ("NC", "North Carolina"), ("ND", "North Dakota"), ("OH", "Ohio"),
    ("OK", "Oklahoma"), ("OR", "Oregon"), ("PA", "Pennsylvania"), ("PR", "Puerto Rico"), ("RI", "Rhode Island"),
    ("SC", "South Carolina"), ("SD", "South Dakota"), ("TN", "Tennessee"), ("TX", "Texas"), ("UT", "Utah"),
    ("VT", "Vermont"), ("VA", "Virginia"), ("WA", "Washington"), ("WV", "West Virginia"), ("WI", "Wisconsin"),
    ("WY", "Wyoming"),
)


@dataclass(frozen=True)
class ShippingForm:
    values: dict[str, str]
    errors: dict[str, str]

    @property
    def valid(self) -> bool:
        return not self.errors

    def address(self) -> dict[str, str]:
        """The checkout's ShippingAddress."""
        keys = ("firstName", "lastName", "address1", "address2", "city", "state", "zip")
        return {k: self.values[k] for k in keys}


def validate_shipping(form: Mapping[str, str]) -> ShippingForm:
    """Every field trimmed; each problem named next to its field."""
    values = {name: str(form.get(name, "")).strip()[:100] for name in FIELDS}
    errors: dict[str, str] = {}
    for name in REQUIRED:
        if not values[name]:
            errors[name] = f"{LABELS[name]} must not be empty"
    if values["email"] and not EMAIL.match(values["email"]):
        errors["email"] = "Email must be a well-formed email address"
    if not ZIP.match(values["zip"]):
        errors["zip"] = "Zip must be 5 digits"
    if not STATE.match(values["state"]) or values["state"] not in dict(US_STATES):
        errors["state"] = "State must be a US state"
    return ShippingForm(values, errors)


def delivery_token_problem(token: str, known: list[str]) -> str | None:
    """Why a delivery choice is refused, or None."""
    if not token:
        return "Choose a delivery option"
    if not TOKEN.match(token) or token not in known:
        return "Choose one of the delivery options shown"
    return None
