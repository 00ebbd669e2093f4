-- Signed checkpoints and the Merkle tree over the log (docs/AUDITING.md, docs/LOG-FORMAT.md).
--
-- A signing round (command-api, one at a time under an advisory lock) folds the events after the
-- last checkpoint into the Merkle tree, stores every perfect subtree it completes, and inserts
-- the signed checkpoint, all in one transaction. query-api builds inclusion and consistency
-- proofs from merkle_nodes; auditors verify the signatures with signing_keys (and with keys they
-- obtained elsewhere: whoever holds the database could add a key of their own).

CREATE TABLE signing_keys (
    key_id        text PRIMARY KEY,
    algorithm     text NOT NULL CHECK (algorithm = 'ed25519'),
    public_key    bytea NOT NULL CHECK (length(public_key) = 32),
    first_used_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE checkpoints (
    position    bigint PRIMARY KEY CHECK (position >= 1),
    chain_hash  bytea NOT NULL CHECK (length(chain_hash) = 32),
    merkle_root bytea NOT NULL CHECK (length(merkle_root) = 32),
    signed_at   timestamptz NOT NULL,
    key_id      text NOT NULL REFERENCES signing_keys (key_id),
    signature   bytea NOT NULL CHECK (length(signature) = 64),
    -- The right edge of the Merkle tree at this size (its perfect subtrees, largest first), so
    -- the next round continues from here instead of from the first event.
    frontier    bytea NOT NULL
);

-- Perfect subtrees of the Merkle tree: `level` 0 are the leaves (position = index + 1).
CREATE TABLE merkle_nodes (
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 62),
    index bigint NOT NULL CHECK (index >= 0),
    hash  bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, index)
);

-- Like the log, what was signed and proven is never changed.
CREATE FUNCTION append_only_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse_change();
CREATE TRIGGER merkle_nodes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON merkle_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse_change();
CREATE TRIGGER signing_keys_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse_change();
