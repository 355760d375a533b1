-- Upload lag (issue #17): per run, the seconds from an accepted event's event_time to the moment
-- the destination accepted it: median, 95th percentile (nearest rank) and maximum. Null for runs
-- that sent nothing and for runs recorded before this migration. Runs with search_path set to
-- the ledger schema.

alter table runs
    add column upload_lag_median_seconds double precision,
    add column upload_lag_p95_seconds    double precision,
    add column upload_lag_max_seconds    double precision;
