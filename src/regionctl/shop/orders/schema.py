"""The orders schema: the reference's CUSTOMER_ORDER and CUSTOMER_ORDER_ITEM (items really persisted), plus the
transactional outbox, the consumer's dedupe table and its projection."""

from __future__ import annotations

from regionctl.shop.kit.migrate import Migration

COMPONENT = "orders"
TABLES = ("customer_order", "customer_order_item", "order_outbox", "order_event_consumed", "product_sales")

V1 = """
create table if not exists customer_order (
    id uuid primary key,
    first_name text not null default '',
    last_name text not null default '',
    email text not null,
    created_on timestamptz not null default now(),
    region text not null,
    idempotency_key text unique,
    request_hash text not null,
    subtotal integer not null,
    tax integer not null,
    shipping integer not null,
    total integer not null
);
create index if not exists customer_order_by_time on customer_order (created_on desc, id);
create index if not exists customer_order_by_email on customer_order (lower(email), created_on desc);
create table if not exists customer_order_item (
    order_id uuid not null references customer_order (id) on delete cascade,
    product_id varchar(64) not null,
    name text not null default '',
    quantity integer not null check (quantity > 0),
    price integer not null check (price >= 0),
    total_cost integer not null,
    primary key (order_id, product_id)
);
create table if not exists order_outbox (
    event_id uuid primary key,
    order_id uuid not null,
    event_type text not null,
    payload jsonb not null,
    created_at timestamptz not null default now(),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    claimed_until timestamptz,
    claimed_by text,
    delivered_at timestamptz,
    last_error text
);
create index if not exists order_outbox_due on order_outbox (next_attempt_at) where delivered_at is null;
create table if not exists order_event_consumed (
    event_id uuid primary key,
    order_id uuid not null,
    consumer_region text not null,
    consumed_at timestamptz not null default now()
);
create table if not exists product_sales (
    product_id varchar(64) primary key,
    orders bigint not null default 0,
    quantity bigint not null default 0,
    revenue bigint not null default 0
);
"""

# Replay's delta policy on the sales projection needs each lost change's before-image (reconcile/merge.py):
# with the whole old row logged, decoding keeps it even when the new writer changed the row since.
V2 = "alter table product_sales replica identity full"

MIGRATIONS = (Migration(1, "orders, items, outbox, consumer", sql=V1),
              Migration(2, "the sales projection logs whole old rows (replay's delta)", sql=V2))
