-- Issue 22: a touch is not a change. A sent order whose rows are re-stamped (a dbt model
-- rebuilt with `current_timestamp as updated_at`) without a change to what would be sent was
-- counted `changed_after_send`. Each sent (or rejected) order now keeps the SHA-256 of its event
-- (over a canonical form, hex), and a sent order is changed only when its event's digest
-- differs.
-- Rows written before have none and keep the comparison by watermark value.
-- Runs with search_path set to the ledger schema.

alter table ledger add column event_digest text;
-- The digest of the event when a change after send was counted, so that a later touch of the
-- changed order is not counted again.
alter table ledger add column changed_digest text;
