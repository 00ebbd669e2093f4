-- The head row cannot be truncated away, and must point at the last event, not just at an event.

CREATE TRIGGER event_head_no_truncate BEFORE TRUNCATE ON event_head
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

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
    IF EXISTS (SELECT 1 FROM events WHERE position > NEW.position) THEN
        RAISE EXCEPTION 'the event head must point at the last event, not before it' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
