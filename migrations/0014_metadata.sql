-- Metadata changes and metadata queries (docs/adr/0008-ledger-depth.md, section 5).
--
-- `AccountMetadataSet` and `TransferMetadataSet` events carry a patch: each key given replaces
-- that key's value, and a key given as null is removed. The projector composes a batch's patches
-- per row in memory and applies them with `metadata_patched`, one update per row.
--
-- Filters are containment (`metadata @> $1`), served by GIN indexes with `jsonb_path_ops`. The
-- indexes are partial over non-empty metadata, so the many transfers and accounts without any
-- cost the insert path no index entry; queries repeat the predicate so the planner can use them.

CREATE FUNCTION metadata_patched(metadata jsonb, patch jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN patch IS NULL THEN metadata
                ELSE (metadata || patch) - ARRAY(SELECT key FROM jsonb_each(patch) WHERE value = 'null'::jsonb)
           END
$$;

DO $$
DECLARE
    generation text;
BEGIN
    FOR generation IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$' LOOP
        EXECUTE format(
            'CREATE INDEX accounts_metadata ON %I.accounts USING gin (metadata jsonb_path_ops)
              WHERE metadata <> ''{}''::jsonb', generation);
        EXECUTE format(
            'CREATE INDEX transfers_metadata ON %I.transfers USING gin (metadata jsonb_path_ops)
              WHERE metadata <> ''{}''::jsonb', generation);
    END LOOP;
END
$$;
