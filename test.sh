#!/usr/bin/env bash
# Runs every test of Inbox.Reliability. On a fresh Debian machine it installs what the tests need first;
# servers the tests use are started and stopped by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "test.sh: the .NET SDK (10.0 or later) is required and was not found on PATH; install it from https://dot.net and run ./test.sh again." >&2
  exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
[ -n "${INBOX_TEST_POSTGRES:-}" ] || bash tests/Inbox.Reliability.PostgreSql.Tests/ensure-postgresql.sh # PostgreSQL for its tests
bash tests/Inbox.Reliability.S3.Tests/ensure-fauxqs.sh # Node 24 + fauxqs, the S3-compatible server of the S3 tests (npm, into ~/.cache/inbox-fauxqs)
status=0
dotnet test Inbox.Reliability.sln "$@" 2>&1 | tee "$log" || status=$?

# One closing line over all test projects.
awk '/^(Passed|Failed)! +- Failed: +[0-9]+, Passed: +[0-9]+/ {
       gsub(",", ""); f += $4; p += $6; s += $8 }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit $status
