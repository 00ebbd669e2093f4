#!/bin/bash
# compose: the primary's one-time setup, run by the official postgres image's entrypoint from
# /docker-entrypoint-initdb.d on the first start (empty data volume), while its temporary server
# listens on the Unix socket only. Later starts skip it.
#
# - `partida` owns the `partida` database (the migrations create schemas and tables in it) and
#   is not a superuser: the migrations, `projector rebuild` and `tokens` log in as it.
# - `partida_writer`, `partida_reader` and `partida_projector` are the group roles migrations
#   0010 and 0016 grant the least privilege to (docs/adr/0007-service-roles.md); created here
#   because `partida` may not create roles. command-api logs in as `partida_command` (a writer),
#   query-api as `partida_query` (select only), the projector as `partida_projection` (the read
#   tables' rows).
# - `partida_command` is a member of pg_read_all_stats: with PARTIDA_CHECKPOINT_MIN_STANDBYS > 0
#   a signing round counts the standbys in pg_stat_replication whose replay_lsn has passed the
#   checkpoint, and PostgreSQL shows replay_lsn only to superusers and that role's members
#   (without it the count is always 0 and every round fails with `not_replicated`).
# - `replicator` streams WAL to the hot standby, through a physical slot so that the primary
#   keeps the WAL the standby has not received (bounded by max_slot_wal_keep_size).
#
# Written to work when run and when sourced (the entrypoint sources scripts that are not
# executable): no `exit`, no `set -u`, everything in a function.

partida_primary_init() {
    if [ -z "${PARTIDA_DB_PASSWORD:-}" ] || [ -z "${PARTIDA_REPLICATION_PASSWORD:-}" ] ||
        [ -z "${PARTIDA_COMMAND_DB_PASSWORD:-}" ] || [ -z "${PARTIDA_QUERY_DB_PASSWORD:-}" ] ||
        [ -z "${PARTIDA_PROJECTION_DB_PASSWORD:-}" ]; then
        echo "primary-init: PARTIDA_DB_PASSWORD, PARTIDA_COMMAND_DB_PASSWORD, PARTIDA_QUERY_DB_PASSWORD," \
            "PARTIDA_PROJECTION_DB_PASSWORD and PARTIDA_REPLICATION_PASSWORD must be set" >&2
        return 1
    fi
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        --set partida_password="$PARTIDA_DB_PASSWORD" \
        --set command_password="$PARTIDA_COMMAND_DB_PASSWORD" \
        --set query_password="$PARTIDA_QUERY_DB_PASSWORD" \
        --set projection_password="$PARTIDA_PROJECTION_DB_PASSWORD" \
        --set replication_password="$PARTIDA_REPLICATION_PASSWORD" \
        --set slot="${PARTIDA_REPLICATION_SLOT:-standby1}" <<-'SQL'
	CREATE ROLE partida LOGIN PASSWORD :'partida_password';
	CREATE DATABASE partida OWNER partida;
	CREATE ROLE partida_writer NOLOGIN;
	CREATE ROLE partida_reader NOLOGIN;
	CREATE ROLE partida_projector NOLOGIN;
	CREATE ROLE partida_command LOGIN PASSWORD :'command_password' IN ROLE partida_writer, pg_read_all_stats;
	CREATE ROLE partida_query LOGIN PASSWORD :'query_password' IN ROLE partida_reader;
	CREATE ROLE partida_projection LOGIN PASSWORD :'projection_password' IN ROLE partida_projector;
	CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'replication_password';
	SELECT pg_create_physical_replication_slot(:'slot');
	SQL
    # "all" in the database column does not match replication connections: they need a line.
    echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
}

partida_primary_init
