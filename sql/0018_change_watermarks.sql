-- One watermark per `[[source.changes]]` table (issue 21): a run finds the keys each base table
-- changed since its own stored watermark (by that table's index), reads the orders they touch,
-- and moves each table's watermark forward in the transaction that records those orders.
-- `source_table` is the table as `source.changes.table` names it; `watermark_type` the column's
-- type (`timestamptz`, `timestamp`, `date`, `bigint`), which the text form is cast back to.
-- Runs with search_path set to the ledger schema.
create table if not exists change_watermarks (
    connector text not null,
    source_table text not null,
    watermark text not null,
    watermark_type text not null,
    run_id bigint,
    updated_at timestamptz not null default now(),
    primary key (connector, source_table)
);
