"""ui: the server-rendered store front (home, catalog, product, cart, 4-step checkout, confirmation, orders)."""
