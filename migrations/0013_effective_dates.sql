-- Effective dates (docs/adr/0008-ledger-depth.md, section 4).
--
-- A transfer may take effect for the books at another time than it is recorded. Entries and
-- transfers keep that time only for dated transfers: NULL means "when recorded", so nothing
-- before this migration needs rewriting and undated entries (nearly all) cost nothing more.
--
-- A balance as of effective time T, as known at position N, is the running total at the last
-- position recorded at or before T (at most N), corrected by the dated entries only: plus those
-- recorded after it (up to N) that take effect by T, minus those recorded by then that take effect
-- after T. The partial index holds just the dated entries, so the correction is a small probe
-- and the hot insert path maintains no new index entry for undated ones.

DO $$
DECLARE
    generation text;
BEGIN
    FOR generation IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$' LOOP
        EXECUTE format('ALTER TABLE %I.entries ADD COLUMN effective_at timestamptz', generation);
        EXECUTE format('ALTER TABLE %I.transfers ADD COLUMN effective_at timestamptz', generation);
        EXECUTE format(
            'CREATE INDEX entries_dated ON %I.entries (account_id, position) INCLUDE (effective_at, side, amount)
              WHERE effective_at IS NOT NULL', generation);
    END LOOP;
END
$$;
