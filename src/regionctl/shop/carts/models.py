"""The carts API models (the reference's Item and Cart)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

# Ids become store keys "customer:item" scanned by prefix: no separators or wildcards inside them.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$"
MAX_QUANTITY = 10_000
Id = Annotated[str, Field(pattern=ID_PATTERN, description="letters, digits, . and -; at most 64")]


class Item(BaseModel):
    itemId: Id
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)] = 1
    unitPrice: Annotated[int, Field(ge=0, le=1_000_000_000, description="whole dollars")] = 0


class Cart(BaseModel):
    customerId: str
    items: list[Item]
