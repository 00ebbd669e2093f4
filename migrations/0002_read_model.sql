-- Read tables, maintained by the projector and served by query-api.
--
-- A projection's tables live in a schema per generation (ledger_g1, ledger_g2, ...): a rebuild
-- fills the next generation while the live one keeps serving, then flips the pointer in
-- `projections`. Readers follow the pointer, so the switch takes no lock that would cancel
-- queries on a hot standby.

CREATE TABLE projections (
    name       text PRIMARY KEY,
    generation integer NOT NULL,
    checkpoint bigint NOT NULL CHECK (checkpoint >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE SCHEMA ledger_g1;

CREATE TABLE ledger_g1.assets (
    code          text PRIMARY KEY,
    scale         smallint NOT NULL,
    position      bigint NOT NULL,
    registered_at timestamptz NOT NULL
);

CREATE TABLE ledger_g1.accounts (
    id                             text PRIMARY KEY,
    asset                          text NOT NULL,
    name                           text NOT NULL,
    normal_side                    text NOT NULL,
    debits_must_not_exceed_credits boolean NOT NULL,
    credits_must_not_exceed_debits boolean NOT NULL,
    metadata                       jsonb NOT NULL,
    status                         text NOT NULL,
    debits                         bigint NOT NULL,
    credits                        bigint NOT NULL,
    balance                        bigint NOT NULL,
    opened_position                bigint NOT NULL,
    last_position                  bigint NOT NULL,
    opened_at                      timestamptz NOT NULL,
    updated_at                     timestamptz NOT NULL
);
CREATE INDEX ON ledger_g1.accounts (asset, id);
CREATE INDEX ON ledger_g1.accounts (status, id);

-- One row per leg per account, with the account's totals after it: history and point-in-time
-- balances are index lookups.
CREATE TABLE ledger_g1.entries (
    account_id  text NOT NULL,
    position    bigint NOT NULL,
    seq         integer NOT NULL,
    transfer_id text NOT NULL,
    side        text NOT NULL,
    amount      bigint NOT NULL,
    debits      bigint NOT NULL,
    credits     bigint NOT NULL,
    balance     bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, position, seq)
);

CREATE TABLE ledger_g1.transfers (
    id          text PRIMARY KEY,
    position    bigint NOT NULL UNIQUE,
    postings    jsonb NOT NULL,
    metadata    jsonb NOT NULL,
    reverses    text,
    reversed_by text,
    recorded_at timestamptz NOT NULL
);

CREATE TABLE ledger_g1.totals (
    asset     text PRIMARY KEY,
    posted    bigint NOT NULL,
    accounts  bigint NOT NULL,
    transfers bigint NOT NULL
);

INSERT INTO projections (name, generation, checkpoint) VALUES ('ledger', 1, 0);
