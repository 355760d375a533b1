-- Issue 22: an order's identity is its id as the id column's type compares it (`1001.0` and
-- `1001` in a numeric column are one order, `RCPT-77` and `rcpt-77` in a citext column too).
-- Ledger keys written before were the id's text, trimmed. Which of a connector's keys follow
-- which rule depends on its source column's type, which only the source can tell, so the
-- conversion of existing keys is done by `ocapi migrate` (which reports it) or, failing that,
-- by the connector's next run, once; this table remembers that it was done.
-- Runs with search_path set to the ledger schema.

create table key_rules (
    connector    text        primary key,
    -- `text` (the id's text, trimmed: text, integer and uuid ids), `numeric` (without
    -- trailing fractional zeros) or `citext` (lower case).
    rule         text        not null,
    converted_at timestamptz not null default now(),
    -- Ledger keys renamed by the conversion, and rows merged into another of the same key.
    converted    bigint      not null default 0,
    merged       bigint      not null default 0
);
