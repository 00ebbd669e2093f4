-- Account revisions, for conditions (docs/adr/0008-ledger-depth.md, section 3).
--
-- An account's revision counts the events that changed it: its own (opened, frozen, unfrozen,
-- closed) and every transfer, hold and resolution with a leg on it, each event once. A transfer
-- may require an account's revision to be exactly what the client read, so a read-decide-write
-- goes through only if nothing moved in between.

ALTER TABLE write_accounts ADD COLUMN revision bigint NOT NULL DEFAULT 0;

DO $$
DECLARE
    generation text;
BEGIN
    FOR generation IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$' LOOP
        EXECUTE format('ALTER TABLE %I.accounts ADD COLUMN revision bigint NOT NULL DEFAULT 0', generation);
    END LOOP;
END
$$;

-- Every (event position, account id) pair where the event at `position` changed the account, once.
-- A resolution changes the accounts its hold reserved on.
CREATE FUNCTION partida_account_touches() RETURNS TABLE (event_position bigint, account_id text)
LANGUAGE sql STABLE AS $$
    SELECT e.position, e.data->>'id'
      FROM events e
     WHERE e.event_type IN ('AccountOpened', 'AccountFrozen', 'AccountUnfrozen', 'AccountClosed')
    UNION
    SELECT e.position, side.account
      FROM events e
     CROSS JOIN LATERAL jsonb_array_elements(e.data->'postings') leg
     CROSS JOIN LATERAL (VALUES (leg->>'debit'), (leg->>'credit')) side(account)
     WHERE e.event_type IN ('TransferPosted', 'TransferPending')
    UNION
    SELECT e.position, side.account
      FROM events e
      JOIN events hold ON hold.stream_id = e.stream_id AND hold.stream_version = 1
     CROSS JOIN LATERAL jsonb_array_elements(hold.data->'postings') leg
     CROSS JOIN LATERAL (VALUES (leg->>'debit'), (leg->>'credit')) side(account)
     WHERE e.event_type IN ('PendingPosted', 'PendingVoided', 'PendingExpired')
$$;

-- Sets every revision from the log: the write side's from the whole log, each read table's up
-- to the last event it applied to the account. Run once here, for logs written before
-- revisions existed; the writer and the projector keep them from then on.
CREATE FUNCTION partida_backfill_revisions() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    generation text;
BEGIN
    UPDATE write_accounts w SET revision = r.n
      FROM (SELECT account_id, count(*) AS n FROM partida_account_touches() GROUP BY account_id) r
     WHERE r.account_id = w.id;
    FOR generation IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$' LOOP
        EXECUTE format(
            'UPDATE %1$I.accounts a SET revision = r.n
               FROM (SELECT t.account_id, count(*) AS n
                       FROM partida_account_touches() t
                       JOIN %1$I.accounts x ON x.id = t.account_id AND t.event_position <= x.last_position
                      GROUP BY t.account_id) r
              WHERE r.account_id = a.id', generation);
    END LOOP;
END
$$;

SELECT partida_backfill_revisions();
