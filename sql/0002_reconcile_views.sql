-- Reconciliation views over the ledger; `ocapi reconcile` reads them, and so can any SQL client.

create view ledger_daily as
select connector,
       dataset_id,
       (event_time at time zone 'UTC')::date                          as day,
       count(*)                                                       as orders,
       count(*) filter (where status = 'sent')                        as sent,
       count(*) filter (where status = 'pending')                     as pending,
       count(*) filter (where status = 'invalid')                     as invalid,
       count(*) filter (where status = 'rejected')                    as rejected,
       coalesce(sum(value) filter (where status = 'sent'), 0)         as sent_value
from ledger
group by 1, 2, 3;

create view ledger_invalid_reasons as
select connector, dataset_id, status, reason, count(*) as orders
from ledger
where status in ('invalid', 'rejected')
group by 1, 2, 3, 4;
