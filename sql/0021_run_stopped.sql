-- A run stopped by SIGINT or SIGTERM (Ctrl-C, a service stop) commits the pages in flight and
-- is recorded `stopped`, not `completed`, so that `ocapi runs` tells "stopped early" from "done"
-- (the next run sends the rest). Runs with search_path set to the ledger schema.
alter table runs drop constraint if exists runs_status_check;
alter table runs add constraint runs_status_check
    check (status in ('running', 'completed', 'degraded', 'failed', 'stopped'));
