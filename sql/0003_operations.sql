-- Operations (issue #5): the store an order belongs to, and the views behind `ocapi reconcile`,
-- `ocapi runs` and `ocapi quality`, so that the same answers are one `select` away in any SQL
-- client. Runs with search_path set to the ledger schema.

-- Filled from the optional `mapping.store_id`; null when no store column is mapped.
alter table ledger add column store_id text;

create index ledger_store on ledger (connector, store_id);

-- The ledger per store, like `ledger_daily` per day.
create view ledger_by_store as
select connector,
       dataset_id,
       coalesce(store_id, '-')                                        as store_id,
       count(*)                                                       as orders,
       count(*) filter (where status = 'sent')                        as sent,
       count(*) filter (where status = 'pending')                     as pending,
       count(*) filter (where status = 'invalid')                     as invalid,
       count(*) filter (where status = 'rejected')                    as rejected,
       coalesce(sum(value) filter (where status = 'sent'), 0)         as sent_value
from ledger
group by 1, 2, 3;

-- Orders not sent, by day, store, status and reason (the destination's message when rejected).
create view ledger_unsent_reasons as
select connector,
       dataset_id,
       (event_time at time zone 'UTC')::date                          as day,
       coalesce(store_id, '-')                                        as store_id,
       status,
       coalesce(reason, '-')                                          as reason,
       count(*)                                                       as orders,
       coalesce(sum(value), 0)                                        as value
from ledger
where status <> 'sent'
group by 1, 2, 3, 4, 5, 6;

-- Runs with their share of invalid or rejected orders, as `--max-invalid-ratio` computes it.
create view run_summary as
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
       case when events + invalid = 0 then 0
            else round((invalid + rejected)::numeric / (events + invalid), 4)
       end                                                            as invalid_ratio,
       error
from runs;

-- Per run and user_data key: how many sent events carried the key (its coverage).
create view run_match_keys as
select r.run_id,
       r.connector,
       r.started_at,
       k.key,
       k.value::bigint                                                as events,
       r.sent,
       case when r.sent = 0 then null
            else round(k.value::numeric / r.sent, 4)
       end                                                            as coverage
from runs r
cross join lateral jsonb_each_text(r.match_keys) as k(key, value);
