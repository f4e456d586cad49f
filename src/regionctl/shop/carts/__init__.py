"""carts: per-customer carts, one regional-store item per cart line (key ``customerId:itemId``)."""
