-- The ledger: one row per (dataset_id, event_name, order_id), so that no order is ever sent
-- twice and every order can be reconciled. Runs with search_path set to the ledger schema.

create table ledger (
    connector        text        not null,
    dataset_id       text        not null,
    event_name       text        not null,
    order_id         text        not null,
    event_time       timestamptz,
    value            numeric,
    currency         text,
    status           text        not null
                     check (status in ('pending', 'sent', 'invalid', 'rejected')),
    reason           text,
    run_id           bigint,
    first_seen_at    timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    sent_at          timestamptz,
    fbtrace_id       text,
    events_received  integer,
    source_watermark text,
    attempts         integer     not null default 0,
    match_keys       text[],
    payload          text,
    primary key (dataset_id, event_name, order_id)
) with (fillfactor = 70);

comment on column ledger.payload is
    'the hashed event (JSON text) while status = pending, so a dead run''s events are re-sent byte-identical; cleared once sent';

-- No index on status: `pending` -> `sent` then changes no indexed column, so PostgreSQL can
-- update the row in place (a HOT update, in the room fillfactor leaves) instead of writing a new
-- entry in every index. Status questions are aggregates over a connector's rows anyway.
create index ledger_event_time on ledger (connector, event_time);

create table runs (
    run_id             bigserial   primary key,
    connector          text        not null,
    mode               text        not null default 'run',
    status             text        not null default 'running'
                       check (status in ('running', 'completed', 'degraded', 'failed')),
    started_at         timestamptz not null default now(),
    finished_at        timestamptz,
    rows_read          bigint      not null default 0,
    events             bigint      not null default 0,
    sent               bigint      not null default 0,
    skipped_duplicate  bigint      not null default 0,
    changed_after_send bigint      not null default 0,
    invalid            bigint      not null default 0,
    rejected           bigint      not null default 0,
    retries            bigint      not null default 0,
    batches            bigint      not null default 0,
    watermark_start    text,
    watermark_end      text,
    duration_ms        bigint,
    match_keys         jsonb       not null default '{}',
    dropped            jsonb       not null default '{}',
    error              text
);

create index runs_connector on runs (connector, run_id desc);

create table state (
    connector      text        primary key,
    watermark      text,
    watermark_type text,
    run_id         bigint,
    updated_at     timestamptz not null default now()
);
