-- The writer now inserts events, moves the head and updates write-side state in one statement
-- (data-modifying CTEs), where a BEFORE trigger on the head would not yet see the new events.
-- As an AFTER ROW trigger the check runs at the end of the statement, when it does.

DROP TRIGGER event_head_forward ON event_head;

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
    RETURN NULL;
END
$$;

CREATE TRIGGER event_head_forward AFTER UPDATE OR DELETE ON event_head
    FOR EACH ROW EXECUTE FUNCTION event_head_check();
