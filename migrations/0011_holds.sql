-- Two-phase transfers (docs/adr/0008-ledger-depth.md, section 1).
--
-- A hold reserves its amounts at once: each account keeps what open holds reserve on each side,
-- and the no-overdraft limits count it as if it were posted, so two holds can never overspend.
-- The asset's `held` is the sum of its open holds; with `posted` it bounds every counter.

ALTER TABLE write_assets ADD COLUMN held bigint NOT NULL DEFAULT 0 CHECK (held >= 0);

ALTER TABLE write_accounts
    ADD COLUMN pending_debits bigint NOT NULL DEFAULT 0 CHECK (pending_debits >= 0),
    ADD COLUMN pending_credits bigint NOT NULL DEFAULT 0 CHECK (pending_credits >= 0),
    DROP CONSTRAINT write_accounts_check,
    DROP CONSTRAINT write_accounts_check1,
    ADD CONSTRAINT write_accounts_no_overdraft
        CHECK (NOT debits_must_not_exceed_credits OR debits + pending_debits <= credits),
    ADD CONSTRAINT write_accounts_no_credit_balance
        CHECK (NOT credits_must_not_exceed_debits OR credits + pending_credits <= debits);

-- The holds that expire and are not resolved yet: what the expiry sweeper reads. A row comes
-- with its hold and goes with its resolution, in the writer's transaction, so the sweep stays
-- proportional to the open holds rather than to the log.
CREATE TABLE write_pending (
    id         text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX write_pending_expiry ON write_pending (expires_at);

GRANT SELECT, INSERT, DELETE ON write_pending TO partida_writer;

-- The read tables of every generation: pending amounts on accounts, and a transfer's status.
-- `postings` stays what moved (nothing while a hold is open, voided or expired); `held` is
-- what a hold reserved.
DO $$
DECLARE
    generation text;
BEGIN
    FOR generation IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$' LOOP
        EXECUTE format(
            'ALTER TABLE %I.accounts
                 ADD COLUMN pending_debits bigint NOT NULL DEFAULT 0,
                 ADD COLUMN pending_credits bigint NOT NULL DEFAULT 0', generation);
        EXECUTE format(
            'ALTER TABLE %I.transfers
                 ADD COLUMN status text NOT NULL DEFAULT ''posted''
                     CHECK (status IN (''posted'', ''pending'', ''voided'', ''expired'')),
                 ADD COLUMN held jsonb,
                 ADD COLUMN expires_at timestamptz,
                 ADD COLUMN resolved_position bigint,
                 ADD COLUMN resolved_at timestamptz', generation);
        EXECUTE format('CREATE INDEX ON %I.transfers (status, position) WHERE status = ''pending''', generation);
    END LOOP;
END
$$;
