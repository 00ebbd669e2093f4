#!/bin/bash
# compose: the hot standby's entrypoint, wrapping the official postgres image's own.
#
# On the first start (no PG_VERSION in the data volume) it clones the primary with
# `pg_basebackup -R` (-R writes standby.signal and primary_conninfo, -S streams through the
# slot primary-init.sh created), then hands over to docker-entrypoint.sh, which finds an
# existing data directory, skips initdb and starts postgres as a streaming hot standby.
# To re-clone (after the primary was recreated, say), remove the standby's volume.
set -euo pipefail

: "${PRIMARY_HOST:?the host name of the primary}"
: "${PARTIDA_REPLICATION_PASSWORD:?the password of the replicator role}"
PRIMARY_PORT=${PRIMARY_PORT:-5432}
SLOT=${PARTIDA_REPLICATION_SLOT:-standby1}

# As the postgres user: directly when we already are (docker run --user), else through gosu.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        gosu postgres "$@"
    else
        "$@"
    fi
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$PGDATA"
    fi
    chmod 0700 "$PGDATA"
    echo "standby: waiting for the primary at $PRIMARY_HOST:$PRIMARY_PORT"
    until as_postgres pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT"; do
        sleep 1
    done
    echo "standby: cloning the primary (pg_basebackup -R, slot $SLOT)"
    # The password reaches pg_basebackup in the environment only; -R records it in
    # postgresql.auto.conf's primary_conninfo, inside the standby's own volume.
    PGPASSWORD="$PARTIDA_REPLICATION_PASSWORD" as_postgres pg_basebackup \
        --host "$PRIMARY_HOST" --port "$PRIMARY_PORT" --username replicator \
        --pgdata "$PGDATA" --write-recovery-conf --wal-method stream --checkpoint fast \
        --slot "$SLOT" --no-password
    echo "standby: clone complete"
fi

exec docker-entrypoint.sh "$@"
