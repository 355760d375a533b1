-- The ledger's order ids compare as bytes (collation "C") instead of following the database's
-- locale. Every ledger write and lookup walks the primary key, which leads with order_id, and
-- under a libc locale (even C.UTF-8, which PostgreSQL does not treat as "C") each comparison
-- inside it went through strcoll: perf showed text comparison at a fifth of the ledger
-- insert's CPU time. Equality is the same under both collations, so lookups, the key's
-- uniqueness and joins with a source's order ids (which take this column's collation) are
-- unchanged; only `order by order_id` over the ledger now sorts by bytes. The table is not
-- rewritten; the primary key is rebuilt. dataset_id and event_name keep theirs: the views use
-- them, and a key comparison reaches them only between equal order ids.
-- Runs with search_path set to the ledger schema.

alter table ledger alter column order_id type text collate "C";
