"""The catalog schema (product, tag, product_tag as in the reference) and its seed, as idempotent migrations."""

from __future__ import annotations

from regionctl.shop.catalog.seed import PRODUCTS, TAGS
from regionctl.shop.kit.db import Conn
from regionctl.shop.kit.migrate import Migration

COMPONENT = "catalog"

TABLES = """
create table if not exists product (
    product_id varchar(40) primary key,
    name varchar(40) not null,
    description varchar(200) not null,
    price integer not null check (price >= 0),
    count integer not null check (count >= 0),
    image_url varchar(80) not null
);
create table if not exists tag (
    tag_id serial primary key,
    name varchar(20) not null unique,
    display_name varchar(20) not null
);
create table if not exists product_tag (
    product_id varchar(40) not null references product (product_id),
    tag_id integer not null references tag (tag_id),
    primary key (product_id, tag_id)
);
create index if not exists product_tag_by_tag on product_tag (tag_id, product_id);
"""


def seed(conn: Conn) -> None:
    """Insert the seed rows that are missing; rows already there (maybe edited) are left alone."""
    with conn.cursor() as cur:
        cur.executemany("insert into tag (name, display_name) values (%s, %s) on conflict (name) do nothing", TAGS)
        cur.executemany(
            "insert into product (product_id, name, description, price, count, image_url) "
            "values (%s, %s, %s, %s, %s, %s) on conflict (product_id) do nothing",
            [(p.id, p.name, p.description, p.price, p.count, p.image_url) for p in PRODUCTS],
        )
        cur.executemany(
            "insert into product_tag (product_id, tag_id) select %s, tag_id from tag where name = %s "
            "on conflict do nothing",
            [(p.id, tag) for p in PRODUCTS for tag in p.tags],
        )


MIGRATIONS = (
    Migration(1, "tables", sql=TABLES),
    Migration(2, "seed watches and tags", fn=seed),
)
