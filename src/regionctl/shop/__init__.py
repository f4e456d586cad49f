"""The retail store workload: six small services per region (the reference's ui, catalog, carts, checkout,
orders, assets), each its own process started with ``python -m regionctl.shop <service>``.

The platform never imports this package; it learns what it needs (ports, health URLs, DSNs) from
``shop.launch.process_specs``.
"""

SERVICES = ("assets", "catalog", "orders", "carts", "checkout", "ui")  # dependency order: callees first
