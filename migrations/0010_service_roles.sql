-- Least privilege for the services (docs/adr/0007-service-roles.md).
--
-- Two group roles, granted exactly what their service does:
--   partida_writer  command-api: appends to the log (INSERT, never UPDATE or DELETE), moves the
--                   head, keeps the write-side state and idempotency keys, signs checkpoints,
--                   looks up API tokens.
--   partida_reader  query-api: SELECT only, on the log, the checkpoints and every read-model
--                   generation (the projector grants each new generation as it creates it).
-- The services log in as roles that are members of these (docs/DEPLOY.md, "Database roles").
-- The tables' owner (who runs the migrations) is the projector's role and the token admin's;
-- even the owner cannot change or remove an event, the triggers of 0001 refuse it.
--
-- The roles are created here when they do not exist yet, which needs CREATEROLE; a DBA may
-- create them beforehand instead, and the migration then only grants.

DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['partida_writer', 'partida_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by a migration of another database in this cluster
            END;
        END IF;
    END LOOP;
END
$$;

-- No role creates objects in the schema the owner's code resolves names in (PostgreSQL 15 has
-- this default; older clusters and upgraded ones may not).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO partida_writer, partida_reader;

GRANT SELECT, INSERT ON events TO partida_writer;
GRANT SELECT, UPDATE ON event_head TO partida_writer;
GRANT SELECT, INSERT, UPDATE ON write_assets, write_accounts TO partida_writer;
GRANT SELECT, INSERT ON idempotency_keys TO partida_writer;
GRANT SELECT, INSERT ON signing_keys, checkpoints, merkle_nodes TO partida_writer;
GRANT SELECT ON api_tokens TO partida_writer;

GRANT SELECT ON events, event_head, projections, signing_keys, checkpoints, merkle_nodes, api_tokens
    TO partida_reader;

DO $$
DECLARE
    generation text;
BEGIN
    FOR generation IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$' LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO partida_reader', generation);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO partida_reader', generation);
    END LOOP;
END
$$;
