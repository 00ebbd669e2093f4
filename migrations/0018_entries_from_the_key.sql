-- An account's entries are read from the entries' key alone (docs/adr/0013-entries-read-from-the-key.md).
--
-- The key (account_id, position, seq) now carries every other column of an entry. A page of an
-- account's entries, and its balance at a position, become index-only scans: the page's rows lie
-- next to each other in one or two leaf pages, where the table holds them one per heap page (an
-- account's entries are written in log order, among everybody else's). A heap page is still
-- visited for rows written since the table was last vacuumed (the visibility map does not yet
-- say that they are visible to all), so the entries table is vacuumed after 2% growth instead of
-- the default 20%: it is insert-only, and such a vacuum reads only the pages added since the last.
--
-- The key's index is about twice as large as before (the table's size again). A rebuild keeps
-- both: it restores the key's definition after its bulk load and copies the table's options.
-- Each generation's key is rebuilt under this migration's lock.

DO $$
DECLARE
    generation text;
    key text;
BEGIN
    FOR generation IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$' LOOP
        SELECT conname INTO key FROM pg_constraint
         WHERE conrelid = format('%I.entries', generation)::regclass AND contype = 'p';
        EXECUTE format(
            'ALTER TABLE %I.entries DROP CONSTRAINT %I,
                 ADD CONSTRAINT %I PRIMARY KEY (account_id, position, seq)
                     INCLUDE (transfer_id, side, amount, debits, credits, balance, recorded_at, effective_at)',
            generation, key, key);
        EXECUTE format('ALTER TABLE %I.entries SET (autovacuum_vacuum_insert_scale_factor = 0.02)', generation);
    END LOOP;
END
$$;
