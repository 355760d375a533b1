-- Demo data for docker/compose.yaml, loaded once by postgres's entrypoint on an empty volume.
-- Event times are relative to now() so that every row is inside Meta's 62-day window.

create schema demo;

create table demo.store_transactions (
    order_id     text primary key,
    store_id     text,
    purchased_at timestamptz not null,
    updated_at   timestamptz not null default now(),
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
    loyalty_id   text
);

create index on demo.store_transactions (updated_at, order_id);

insert into demo.store_transactions
select 'D' || g,
       'store-' || (1 + g % 5),
       now() - (g % 30) * interval '1 day' - (g % 600) * interval '1 minute',
       now() - (2000 - g) * interval '1 second',
       round((5 + (g * 37 % 20000) / 100.0)::numeric, 2),
       'USD',
       case when g % 4 = 0 then null else 'customer' || g || '@example.com' end,
       case when g % 3 = 0 then null else '(650) 555-' || lpad((g % 10000)::text, 4, '0') end,
       (array['Mary', 'John', 'Ana', 'Li', 'Sam'])[1 + g % 5],
       (array['Smith', 'Garcia', 'Chen', 'Okafor', 'Novak'])[1 + g % 5],
       'New York', 'NY', '10001', 'US',
       'L' || g
from generate_series(1, 2000) g;

-- A few rows that cannot be sent, so that `ocapi reconcile` has reasons to show.
update demo.store_transactions set total = null where order_id in ('D7', 'D77');
update demo.store_transactions set currency = 'XYZ' where order_id = 'D777';
