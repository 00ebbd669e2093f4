-- "No event after the head" was checked as EXISTS (... position > head): PL/pgSQL plans that
-- generically, expects a third of the log to match and scans it sequentially, on every batch.
-- Positions are dense (events_chain guarantees it), so it is exactly "no event at head + 1": one
-- primary-key probe.

CREATE OR REPLACE FUNCTION event_head_check() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF EXISTS (SELECT 1 FROM events WHERE position = NEW.position + 1) THEN
        RAISE EXCEPTION 'the event head must point at the last event, not before it' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
