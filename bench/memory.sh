#!/usr/bin/env bash
# Memory under many concurrent list requests: the server's idle RSS, its peak RSS while
# CLIENTS (default 1000) connections each ask for `GET /incidents?limit=200` for SECS seconds,
# the throughput, and its RSS a minute after the load ends. The goals (issue 28): peak < 100 MB
# with 1000 clients, back under 60 MB within a minute, throughput no lower than before.
# Usage: bash bench/memory.sh [CLIENTS] [SECS]   (release build; BIN= measures another)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

CLIENTS=${1:-1000}
SECS=${2:-20}
DB=bench_memory
PORT=${PORT:-18095}
ulimit -n 65536 2>/dev/null || ulimit -n 8192

server_env
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
# 2 000 incidents, so that every page holds 200.
$BIN seed-demo --incidents 2000 --knowledge 0 >/dev/null
$BIN serve >/dev/null 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
wait_healthz "$BASE"
ADMIN=$(token admin)
create_user bench.desk service_desk
DESK=$(token bench.desk)

curl -fs "$BASE/api/v1/incidents?limit=200" -H "Authorization: Bearer $DESK" >/dev/null
sleep 2
IDLE=$(rss)
OUT=$(wrk -t2 -c"$CLIENTS" -d"${SECS}s" --timeout 30s \
    -H "Authorization: Bearer $DESK" "$BASE/api/v1/incidents?limit=200")
RATE=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
ERRORS=$(echo "$OUT" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
PEAK=$(peak)
AFTER_LOAD=$(rss)
sleep 60
AFTER_MINUTE=$(rss)
echo "clients=$CLIENTS secs=$SECS idle_rss_mb=$IDLE peak_rss_mb=$PEAK rss_at_end_mb=$AFTER_LOAD" \
     "rss_after_60s_mb=$AFTER_MINUTE pages_per_s=$RATE ${ERRORS:+errors: $ERRORS}"
