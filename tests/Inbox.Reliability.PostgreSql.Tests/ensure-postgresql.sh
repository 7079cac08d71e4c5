#!/usr/bin/env bash
# Installs PostgreSQL (Debian's package) when it is missing, for the PostgreSQL tests. Idempotent.
# The tests start and stop their own throwaway cluster (initdb + pg_ctl in a temporary folder, a free loopback port),
# so nothing is configured here; set INBOX_TEST_POSTGRES to a connection string to use an existing server instead.
set -euo pipefail

dpkg -s postgresql-15 >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; }

# The package may start its own "main" cluster on 5432 on some systems (not on these machines): stop it, since the tests
# need none and it would hold the port and memory.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r version cluster port status _; do
    if [ "$status" = "online" ]; then
      pg_ctlcluster "$version" "$cluster" stop || true
    fi
  done
fi

ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null
