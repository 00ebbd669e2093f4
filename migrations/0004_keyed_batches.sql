-- A batch sent with an Idempotency-Key records the answers it was given, so the same key and
-- request get the same answers, rejections included.
ALTER TABLE idempotency_keys ADD COLUMN response jsonb;
