-- The event-time floor of a first run (issue 22): a run that found no ledger state for its
-- connector, without `source.start` or `--initial-sync`, sends only the last 7 days and records
-- here the floor it applied. Later runs keep leaving older orders out (counted `history_left`)
-- until `--initial-sync` clears it, so re-stamped old rows are not sent after all. Null: no
-- floor. Runs with search_path set to the ledger schema.
alter table state add column if not exists history_floor timestamptz;
