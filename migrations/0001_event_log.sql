-- The event log: one global, gap-free, hash-chained sequence of events.
--
-- Positions come from the single head row, locked by each writer for the length of its transaction,
-- never from a sequence: commit order equals position order and a rollback leaves no hole. The
-- database itself refuses what must never happen: changing or removing an event, a gap, a broken
-- link, a timestamp that goes backwards, a head that points anywhere but the last event.

CREATE TABLE event_head (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    position    bigint NOT NULL CHECK (position >= 0),
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    recorded_at timestamptz NOT NULL
);

INSERT INTO event_head (position, hash, recorded_at)
VALUES (0, decode(repeat('00', 32), 'hex'), to_timestamp(0));

CREATE TABLE events (
    position       bigint PRIMARY KEY CHECK (position >= 1),
    event_id       uuid NOT NULL UNIQUE,
    stream_id      text NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version >= 1),
    event_type     text NOT NULL,
    schema_version integer NOT NULL,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL,
    recorded_at    timestamptz NOT NULL,
    prev_hash      bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash           bytea NOT NULL CHECK (length(hash) = 32),
    UNIQUE (stream_id, stream_version)
);

-- Finds the reversal of a transfer without a second copy of transfer state.
CREATE INDEX events_reversals ON events ((data ->> 'reverses'))
    WHERE event_type = 'TransferPosted' AND data ? 'reverses';

CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Once per INSERT statement, set-based: every new event must follow an existing predecessor
-- (so positions stay dense), carry its hash as prev_hash, and not be recorded before it.
CREATE FUNCTION events_check_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.position, n.prev_hash, n.recorded_at,
           p.position AS p_position, p.hash AS p_hash, p.recorded_at AS p_recorded_at
      INTO bad
      FROM new_events n
      LEFT JOIN events p ON p.position = n.position - 1
     WHERE CASE WHEN n.position = 1 THEN n.prev_hash <> decode(repeat('00', 32), 'hex')
                ELSE p.position IS NULL OR p.hash <> n.prev_hash OR p.recorded_at > n.recorded_at
           END
     ORDER BY n.position
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    ELSIF bad.position = 1 THEN
        RAISE EXCEPTION 'broken chain: event 1 must link to the genesis hash' USING ERRCODE = 'check_violation';
    ELSIF bad.p_position IS NULL THEN
        RAISE EXCEPTION 'gap in the log: event % has no predecessor %', bad.position, bad.position - 1
            USING ERRCODE = 'check_violation';
    ELSIF bad.p_hash <> bad.prev_hash THEN
        RAISE EXCEPTION 'broken chain: prev_hash of event % is not the hash of event %', bad.position, bad.position - 1
            USING ERRCODE = 'check_violation';
    ELSE
        RAISE EXCEPTION 'time runs backwards: event % is recorded before event %', bad.position, bad.position - 1
            USING ERRCODE = 'check_violation';
    END IF;
END
$$;

CREATE TRIGGER events_chain AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_check_chain();

-- The head only moves forward, and only onto an event that exists with that hash.
CREATE FUNCTION event_head_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the event head cannot be deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.position < OLD.position THEN
        RAISE EXCEPTION 'the event head cannot move back from % to %', OLD.position, NEW.position
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.position > 0 AND NOT EXISTS (
        SELECT 1 FROM events WHERE position = NEW.position AND hash = NEW.hash AND recorded_at = NEW.recorded_at
    ) THEN
        RAISE EXCEPTION 'the event head must point at the last event' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER event_head_forward BEFORE UPDATE OR DELETE ON event_head
    FOR EACH ROW EXECUTE FUNCTION event_head_check();

-- Write-side state: exactly what the writer needs to decide, maintained in the same transaction
-- as the events that change it. Transfers need no table of their own: the log's stream index
-- finds them, and events_reversals finds their reversals.

CREATE TABLE write_assets (
    code     text PRIMARY KEY,
    scale    smallint NOT NULL,
    posted   bigint NOT NULL CHECK (posted >= 0),
    position bigint NOT NULL
);

CREATE TABLE write_accounts (
    id                             text PRIMARY KEY,
    asset                          text NOT NULL REFERENCES write_assets (code),
    normal_side                    text NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    debits_must_not_exceed_credits boolean NOT NULL,
    credits_must_not_exceed_debits boolean NOT NULL,
    status                         text NOT NULL CHECK (status IN ('open', 'frozen', 'closed')),
    debits                         bigint NOT NULL CHECK (debits >= 0),
    credits                        bigint NOT NULL CHECK (credits >= 0),
    version                        bigint NOT NULL,
    fingerprint                    bytea NOT NULL,
    position                       bigint NOT NULL,
    CHECK (NOT debits_must_not_exceed_credits OR debits <= credits),
    CHECK (NOT credits_must_not_exceed_debits OR credits <= debits)
);

-- Idempotency-Key records for the POSTs whose body carries no natural id.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    request_hash bytea NOT NULL,
    position     bigint NOT NULL,
    created_at   timestamptz NOT NULL
);
