-- Walk-in sales (issue 22): an order whose rows carry no customer value at all (a value that
-- comes only from `[defaults]`, such as the country, does not count) is not an error. It is
-- recorded `anonymous`: not sent (Meta cannot attribute it to anyone), never counted invalid
-- or in `--max-invalid-ratio`, and sent once if a later run reads it with customer data (a
-- loyalty card linked after the sale). Runs with search_path set to the ledger schema.
--
-- Earlier ledgers' rows keep their status and reason: a walk-in an older build recorded
-- `invalid` (`no customer information`, or `insufficient customer information` with a default
-- country) stays so until a run reads it again, which records it `anonymous`.

alter table ledger drop constraint ledger_status_check;
alter table ledger add constraint ledger_status_check
    check (status in ('sent', 'invalid', 'rejected', 'held', 'anonymous'));

-- A run's walk-in sales (0 for runs recorded before this migration).
alter table runs add column anonymous bigint not null default 0;

-- The views count them (new columns at the end, so that `select *` users keep theirs).
create or replace view ledger_daily as
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
       coalesce(sum(value) filter (where status = 'sent'), 0)         as sent_value,
       count(*) filter (where status = 'anonymous')                   as anonymous
from ledger
group by 1, 2, 3, 4;

create or replace view ledger_by_store as
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
       coalesce(sum(value) filter (where status = 'sent'), 0)         as sent_value,
       count(*) filter (where status = 'anonymous')                   as anonymous
from ledger
group by 1, 2, 3, 4;

create or replace view run_summary as
select run_id,
       connector,
       mode,
       status,
       started_at,
       finished_at,
       duration_ms,
       rows_read,
       events,
       sent,
       skipped_duplicate,
       changed_after_send,
       invalid,
       rejected,
       retries,
       batches,
       watermark_start,
       watermark_end,
       case when events + invalid - returns - too_old = 0 then 0
            else round((invalid - returns - too_old + rejected)::numeric
                       / (events + invalid - returns - too_old), 4)
       end                                                            as invalid_ratio,
       error,
       returns,
       too_old,
       anonymous
from runs;

-- Per day (UTC, of the event time) and store (`mapping.store_id`, `-` when unmapped): the
-- store sales figures Google's store-sales upload asks for.
--   sales                        orders with a known outcome: sent, rejected, invalid or
--                                anonymous (held orders wait for theirs; returns, negative
--                                totals, are no sales)
--   with_customer                of those, the orders that carried customer information (all
--                                but the anonymous ones; an order invalid for another reason
--                                counts here, its customer data unread)
--   loyalty_fraction             with_customer / sales (null without sales)
--   transaction_upload_fraction  sent / with_customer (null without such orders)
create view ledger_store_sales as
with sales as (
    select connector,
           dataset_id,
           coalesce(to_char(event_time at time zone 'UTC', 'YYYY-MM-DD'), 'undated') as day,
           coalesce(store_id, '-')                                    as store_id,
           count(*)                                                   as sales,
           count(*) filter (where status <> 'anonymous')              as with_customer,
           count(*) filter (where status = 'sent')                    as sent,
           count(*) filter (where status = 'anonymous')               as anonymous
    from ledger
    where status <> 'held'
      and not (status = 'invalid'
               and reason = 'negative value (a return or void is not a purchase)')
    group by 1, 2, 3, 4
)
select connector,
       dataset_id,
       day,
       store_id,
       sales,
       with_customer,
       sent,
       anonymous,
       case when sales = 0 then null
            else round(with_customer::numeric / sales, 4) end        as loyalty_fraction,
       case when with_customer = 0 then null
            else round(sent::numeric / with_customer, 4) end         as transaction_upload_fraction
from sales;
