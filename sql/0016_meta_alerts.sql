-- The alerts about Meta's side that are sent once (issue 25): a token about to expire (once per
-- day), a settled day on which Meta counted fewer events than the ledger sent (once per day
-- counted). Runs with search_path set to the ledger schema.
--
-- A one-shot `ocapi run` from cron or `ocapi reconcile --meta` is a new process each time, so
-- what was already said must live with the connector's ledger: the key names the alert and its
-- day (`token_expiry:2026-12-06`, `meta_shortfall:2026-12-01`).
create table if not exists meta_alerts (
    connector text not null,
    alert_key text not null,
    sent_at timestamptz not null default now(),
    primary key (connector, alert_key)
);
