"""orders: orders with their items, idempotent creation, and order events through a transactional outbox."""
