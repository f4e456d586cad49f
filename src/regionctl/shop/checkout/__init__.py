"""checkout: a customer's checkout in progress (kept in the regional store) and its submission as an order."""
