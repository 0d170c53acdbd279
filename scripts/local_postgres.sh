#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server on 127.0.0.1, to load tap-quay's output into
# with target-postgres. Its data, socket and log stay in the folder you name.
#
#   bash scripts/local_postgres.sh start DIR [PORT]   # PORT defaults to 5433
#   bash scripts/local_postgres.sh stop DIR
#
# The superuser is "postgres" with no password (trust, on 127.0.0.1 only). PostgreSQL
# refuses to run as root, so as root the server runs as the "postgres" user that Debian's
# postgresql package creates (apt-get install postgresql).
set -euo pipefail

action=${1:-}
dir=${2:-}
port=${3:-5433}
if [ -z "$dir" ] || { [ "$action" != start ] && [ "$action" != stop ]; }; then
  echo "usage: bash scripts/local_postgres.sh start|stop DIR [PORT]" >&2
  exit 2
fi

# Debian keeps the server programs out of PATH, under /usr/lib/postgresql/<version>/bin.
initdb=$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
if [ -z "$initdb" ]; then
  echo "PostgreSQL is not installed; on Debian or Ubuntu: apt-get install postgresql" >&2
  exit 1
fi
bin=$(dirname "$(readlink -f "$initdb")")

as_server_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "$action" = stop ]; then
  as_server_user "$bin/pg_ctl" -D "$dir" -m fast -w stop > /dev/null
  exit 0
fi

mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
fi
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
if [ ! -f "$dir/PG_VERSION" ]; then
  as_server_user "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C > /dev/null
fi
as_server_user "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start > /dev/null
echo "PostgreSQL is serving on 127.0.0.1:$port (user postgres, database postgres)"
