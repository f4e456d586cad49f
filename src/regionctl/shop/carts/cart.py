"""Cart operations over the regional store. Each line is its own item, so concurrent edits of different lines
in two regions never overwrite each other; the same line edited in both converges by last-writer-wins."""

from __future__ import annotations

from regionctl.errors import InputError, NotFoundError
from regionctl.shop.carts.models import MAX_QUANTITY, Cart, Item
from regionctl.shop.regional import GuardedStore, StoredItem, Value

TABLE = "carts"


def item_key(customer_id: str, item_id: str) -> str:
    return f"{customer_id}:{item_id}"


def _item(stored: StoredItem) -> Item:
    value = stored.value
    return Item(itemId=value["itemId"], quantity=value["quantity"], unitPrice=value["unitPrice"])


def _value(customer_id: str, item: Item) -> Value:
    return {"customerId": customer_id, "itemId": item.itemId, "quantity": item.quantity, "unitPrice": item.unitPrice}


def items(store: GuardedStore, customer_id: str) -> list[Item]:
    found = [_item(s) for s in store.scan(TABLE, f"{customer_id}:")]
    return sorted(found, key=lambda i: i.itemId)


def cart(store: GuardedStore, customer_id: str) -> Cart:
    return Cart(customerId=customer_id, items=items(store, customer_id))


def item(store: GuardedStore, customer_id: str, item_id: str) -> Item:
    stored = store.get(TABLE, item_key(customer_id, item_id))
    if stored is None:
        raise NotFoundError(f"item {item_id} is not in the cart of {customer_id}")
    return _item(stored)


def add(store: GuardedStore, customer_id: str, new: Item) -> Item:
    """Add ``new.quantity`` units: to the existing line if there is one (keeping its price), else a new line
    with the quantity asked for (the reference stored 1 whatever was asked)."""
    def bump(value: Value | None) -> Value:
        if value is None:  # a new line: in the same locked read-modify-write, so concurrent adds both count
            return _value(customer_id, new)
        quantity = int(value["quantity"]) + new.quantity
        if quantity > MAX_QUANTITY:
            raise InputError(f"quantity: {new.itemId} would reach {quantity}, more than {MAX_QUANTITY} in one cart")
        return {**value, "quantity": quantity}

    updated = store.update(TABLE, item_key(customer_id, new.itemId), bump)
    assert updated is not None  # bump never deletes
    return _item(updated)


def replace(store: GuardedStore, customer_id: str, new: Item) -> Item:
    """Set quantity and unit price of an existing line."""
    updated = store.update(TABLE, item_key(customer_id, new.itemId),
                           lambda v: None if v is None else {**v, "quantity": new.quantity, "unitPrice": new.unitPrice})
    if updated is None:
        raise NotFoundError(f"item {new.itemId} is not in the cart of {customer_id}")
    return _item(updated)


def remove(store: GuardedStore, customer_id: str, item_id: str) -> None:
    if not store.delete(TABLE, item_key(customer_id, item_id)):
        raise NotFoundError(f"item {item_id} is not in the cart of {customer_id}")


def clear(store: GuardedStore, customer_id: str) -> None:
    for line in items(store, customer_id):
        store.delete(TABLE, item_key(customer_id, line.itemId))


def merge(store: GuardedStore, customer_id: str, session_id: str) -> Cart:
    """Move the lines of the anonymous cart ``session_id`` into ``customer_id``'s cart."""
    if session_id != customer_id:
        for line in items(store, session_id):
            add(store, customer_id, line)
            store.delete(TABLE, item_key(session_id, line.itemId))
    return cart(store, customer_id)
