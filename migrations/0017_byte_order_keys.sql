-- Identifiers compare byte by byte (docs/adr/0012-identifiers-in-byte-order.md).
--
-- Account ids, asset codes, transfer and stream ids, idempotency keys and the indexed statuses
-- take the "C" collation, whatever the database's default. Under any other collation (even
-- C.UTF-8) PostgreSQL compares text by copying both values and calling strcoll, and sorts without
-- abbreviated keys: each probe of these keys' indexes costs more, and building them (a rebuild
-- adds the entries' primary key after loading them) takes longer. For UTF-8 text byte order is
-- code point order, which is what C.UTF-8 sorted by already, so no listing changes its order on
-- the clusters Partida creates; on a cluster whose default collation is linguistic, listings by
-- id now follow byte order. Equality is unchanged: both collations are deterministic.
--
-- No table is rewritten; the indexes on these columns are rebuilt, under this migration's lock.

ALTER TABLE write_assets ALTER COLUMN code TYPE text COLLATE "C";
ALTER TABLE write_accounts ALTER COLUMN id TYPE text COLLATE "C",
                           ALTER COLUMN asset TYPE text COLLATE "C";
ALTER TABLE events ALTER COLUMN stream_id TYPE text COLLATE "C";
ALTER TABLE idempotency_keys ALTER COLUMN key TYPE text COLLATE "C";
ALTER TABLE write_pending ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE subject_keys ALTER COLUMN subject TYPE text COLLATE "C";

DO $$
DECLARE
    generation text;
BEGIN
    FOR generation IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$' LOOP
        EXECUTE format('ALTER TABLE %I.assets ALTER COLUMN code TYPE text COLLATE "C"', generation);
        EXECUTE format('ALTER TABLE %I.totals ALTER COLUMN asset TYPE text COLLATE "C"', generation);
        EXECUTE format(
            'ALTER TABLE %I.accounts ALTER COLUMN id TYPE text COLLATE "C",
                                     ALTER COLUMN asset TYPE text COLLATE "C",
                                     ALTER COLUMN status TYPE text COLLATE "C"', generation);
        EXECUTE format(
            'ALTER TABLE %I.entries ALTER COLUMN account_id TYPE text COLLATE "C",
                                    ALTER COLUMN transfer_id TYPE text COLLATE "C"', generation);
        EXECUTE format(
            'ALTER TABLE %I.transfers ALTER COLUMN id TYPE text COLLATE "C",
                                      ALTER COLUMN reverses TYPE text COLLATE "C",
                                      ALTER COLUMN reversed_by TYPE text COLLATE "C",
                                      ALTER COLUMN status TYPE text COLLATE "C"', generation);
    END LOOP;
END
$$;
