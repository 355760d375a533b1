-- Why Meta rejected an order, as Meta's codes (issue 15), so that analysts can group rejections
-- by cause: `reason` keeps Meta's localized message beside them. Both are null for orders that
-- were not rejected by the destination (sent, invalid, held) and for rows written before this
-- migration. Runs with search_path set to the ledger schema.

-- Meta's Graph `code` (100: invalid parameter).
alter table ledger add column error_code integer;

-- Meta's `error_subcode` (2804xxx: which rule the event broke, e.g. 2804003 too old).
alter table ledger add column error_subcode integer;
