-- API tokens (docs/API.md, "Authentication"). A token is shown once, when it is created; only its
-- SHA-256 is stored, so a copy of the database (or a standby, or a backup) yields no credential.
-- Tokens are 256 random bits, so a fast hash is enough: there is nothing to guess.
--
-- Revoking sets revoked_at; the row stays, so the `credential` recorded in events' metadata keeps
-- naming a known token.

CREATE TABLE api_tokens (
    id         uuid PRIMARY KEY,
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    role       text NOT NULL CHECK (role IN ('admin', 'writer', 'reader', 'auditor')),
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);
