-- The demo-shaped source table: one row per order line, as a point-of-sale export holds it,
-- with no index (a user's table has none made for ocapi). The one definition `ocapi demo`, the
-- tests and bench/e2e create; run it after `set search_path` to the schema it goes in.
create table store_transactions (
    order_id     text,
    purchased_at timestamptz,
    updated_at   timestamptz,
    total        numeric,
    currency     text,
    email        text,
    phone        text,
    first_name   text,
    last_name    text,
    city         text,
    state        text,
    zip          text,
    country      text,
    gender       text,
    birth_date   date,
    loyalty_id   text,
    store_id     text,
    sku          text,
    qty          integer,
    unit_price   numeric(10, 2)
);
