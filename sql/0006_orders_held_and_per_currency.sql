-- Orders as warehouses hold them (issue 11). Runs with search_path set to the ledger schema.

-- `held`: an order dated a few minutes to a day ahead (a till clock running fast). It is not
-- sent and not invalid; the first run after its time has come reads it again by its order id
-- and sends it. The watermark may pass it: this row is what brings it back.
alter table ledger drop constraint ledger_status_check;
alter table ledger add constraint ledger_status_check
    check (status in ('sent', 'invalid', 'rejected', 'held'));

-- Each run asks for the held orders whose time has come.
create index ledger_held on ledger (dataset_id, event_time) where status = 'held';

-- A row added to a sent order, or changed, after the order was sent: Meta takes no correction,
-- so nothing more is sent, but the ledger says so (the first time, and the order's watermark
-- then, so that re-reading the same change is not counted again).
alter table ledger add column changed_after_send_at timestamptz;
alter table ledger add column changed_watermark text;

-- Run counters that the stats gained.
alter table runs add column skipped_rejected bigint not null default 0;
alter table runs add column skipped_invalid bigint not null default 0;
alter table runs add column held bigint not null default 0;
alter table runs add column ahead_of_clock bigint not null default 0;

-- Amounts are never added across currencies: the views group by currency, and orders without
-- an event time (`missing event time`) have their own `undated` day.
drop view ledger_daily;
create view ledger_daily as
select connector,
       dataset_id,
       coalesce(to_char(event_time at time zone 'UTC', 'YYYY-MM-DD'), 'undated') as day,
       coalesce(currency, '-')                                        as currency,
       count(*)                                                       as orders,
       count(*) filter (where status = 'sent')                        as sent,
       count(*) filter (where status = 'invalid')                     as invalid,
       count(*) filter (where status = 'rejected')                    as rejected,
       count(*) filter (where status = 'held')                        as held,
       count(*) filter (where changed_after_send_at is not null)      as changed_after_send,
       coalesce(sum(value) filter (where status = 'sent'), 0)         as sent_value
from ledger
group by 1, 2, 3, 4;

drop view ledger_by_store;
create view ledger_by_store as
select connector,
       dataset_id,
       coalesce(store_id, '-')                                        as store_id,
       coalesce(currency, '-')                                        as currency,
       count(*)                                                       as orders,
       count(*) filter (where status = 'sent')                        as sent,
       count(*) filter (where status = 'invalid')                     as invalid,
       count(*) filter (where status = 'rejected')                    as rejected,
       count(*) filter (where status = 'held')                        as held,
       count(*) filter (where changed_after_send_at is not null)      as changed_after_send,
       coalesce(sum(value) filter (where status = 'sent'), 0)         as sent_value
from ledger
group by 1, 2, 3, 4;

drop view ledger_unsent_reasons;
create view ledger_unsent_reasons as
select connector,
       dataset_id,
       coalesce(to_char(event_time at time zone 'UTC', 'YYYY-MM-DD'), 'undated') as day,
       coalesce(store_id, '-')                                        as store_id,
       status,
       coalesce(reason, '-')                                          as reason,
       coalesce(currency, '-')                                        as currency,
       count(*)                                                       as orders,
       coalesce(sum(value), 0)                                        as value
from ledger
where status <> 'sent'
group by 1, 2, 3, 4, 5, 6, 7;
