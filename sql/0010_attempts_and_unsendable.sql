-- Found trying issue 15 as a user. Runs with search_path set to the ledger schema.

-- `attempts` counts each time an order's outcome was recorded (README). Invalid and held rows
-- were written with 0 and never counted: each has been recorded at least once.
update ledger set attempts = 1 where attempts = 0;

-- Of a run's `invalid` orders, the returns (negative totals) and those more than 62 days old:
-- nothing in the source makes them sendable, so `--max-invalid-ratio` leaves them out.
alter table runs add column returns bigint not null default 0;
alter table runs add column too_old bigint not null default 0;

-- `invalid_ratio` as `--max-invalid-ratio` computes it: returns and orders too old to send
-- left out (runs recorded before this migration have both at 0).
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
       too_old
from runs;
