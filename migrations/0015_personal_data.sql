-- Personal data and crypto-shredding (docs/PERSONAL-DATA.md, docs/adr/0009-crypto-shredding.md).
--
-- Metadata may carry a data subject's personal data under the key `personal`. command-api seals
-- it with AES-256-GCM-SIV under the subject's own 256-bit key before it reaches the log; the
-- projector opens it into the read tables. Erasing a subject appends `PersonalDataErased` and, in
-- the same statement, sets its key to NULL: the log keeps the ciphertext and its hash chain, and
-- nothing can read it again.
--
-- A row with a NULL key is an erased subject: nothing can be sealed for it again.

CREATE TABLE subject_keys (
    subject    text PRIMARY KEY,
    key        bytea CHECK (key IS NULL OR octet_length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);

-- The writer creates keys and destroys them; query-api never reads them.
GRANT SELECT, INSERT, UPDATE ON subject_keys TO partida_writer;
