-- The projector's least privilege (docs/adr/0007-service-roles.md, "The projector's role").
--
--   partida_projector  the projector as it follows the log: reads the log and the subject keys
--                      it opens personal data with, moves its pointer, and writes the rows of
--                      every read-model generation. It cannot create or drop anything, append to
--                      the log, touch the write side or read the API tokens.
-- A rebuild (`projector rebuild`) creates and drops generations: an operator runs it as the
-- owner, like the migrations, and it grants each generation it creates to this role.
--
-- Created here when missing, which needs CREATEROLE (as in 0010); where the owner lacks it
-- (compose, CloudNativePG) the DBA creates it first (docs/DEPLOY.md, "Database roles").

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'partida_projector') THEN
        BEGIN
            CREATE ROLE partida_projector NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by a migration of another database in this cluster
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO partida_projector;
GRANT SELECT ON events, subject_keys TO partida_projector;
-- The checkpoint only: switching generations is a rebuild's, the owner's.
GRANT SELECT, UPDATE (checkpoint, updated_at) ON projections TO partida_projector;

DO $$
DECLARE
    generation text;
BEGIN
    FOR generation IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$' LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO partida_projector', generation);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA %I TO partida_projector', generation);
    END LOOP;
END
$$;
