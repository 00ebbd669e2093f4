#!/bin/bash
# partida-healthcheck ADDR_VARIABLE [PATH]
#
# The images' HEALTHCHECK (and compose's): GET http://<the service's listen address>PATH and
# succeed on HTTP 200. The address is read from the variable the service itself listens on
# (COMMAND_API_ADDR, QUERY_API_ADDR, PROJECTOR_ADDR, WEB_ADDR), so the probe follows the service
# when its port is changed. PATH defaults to /healthz.
#
# Plain bash (/dev/tcp), so the runtime image needs no curl or wget: fewer packages to patch.
set -euo pipefail

variable=${1:?usage: partida-healthcheck ADDR_VARIABLE [PATH]}
path=${2:-/healthz}
address=${!variable:-}
if [[ -z $address ]]; then
    echo "partida-healthcheck: $variable is not set" >&2
    exit 1
fi

port=${address##*:}
host=${address%:*}
host=${host#[}
host=${host%]}
# A wildcard listen address is reached on loopback.
case $host in
    "" | 0.0.0.0 | ::) host=127.0.0.1 ;;
esac

if ! exec 3<> "/dev/tcp/$host/$port"; then
    echo "partida-healthcheck: cannot connect to $host:$port" >&2
    exit 1
fi
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
status=""
IFS= read -r -t 5 status <&3 || true
exec 3>&-
if [[ $status =~ ^HTTP/1\.[01]\ 200 ]]; then
    exit 0
fi
echo "partida-healthcheck: GET http://$host:$port$path answered: ${status%$'\r'}" >&2
exit 1
