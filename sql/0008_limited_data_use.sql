-- Meta's store-purchase contract (issue 16). Runs with search_path set to the ledger schema.

-- Whether the order was sent with Limited Data Use (`data_processing_options = ["LDU"]`):
-- true or false when the connector sends data processing options, null when it does not.
alter table ledger add column ldu boolean;

-- Orders sent with a zero total (free or fully discounted items are purchases).
alter table runs add column zero_value bigint not null default 0;

-- The views count LDU orders per day and store (and currency).
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
       count(*) filter (where status = 'sent' and ldu)                as sent_ldu,
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
       count(*) filter (where status = 'sent' and ldu)                as sent_ldu,
       coalesce(sum(value) filter (where status = 'sent'), 0)         as sent_value
from ledger
group by 1, 2, 3, 4;
