#!/usr/bin/env bash
# Counts the server's CPU instructions per request with callgrind: repeatable on a noisy machine
# where req/s figures swing by a third between runs. Measures N incident creations, N pages of
# the incident list (two filters) and N reads of one incident, each counted alone (counters
# zeroed after warm-up and between them).
# Includes every thread of the server (HTTP workers, the blocking pool, Diesel, libpq), not
# PostgreSQL. BIN=path/to/incident-desk measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."

DB=bench_callgrind
PORT=${PORT:-18098}
N=${N:-200}
OUT=$(mktemp -d)
. bench/lib.sh
server_env
# Every allocator setting the server would otherwise add is given here (src/main.rs): with one
# missing, the server starts itself again with it, outside valgrind, and nothing is counted.
# jemalloc's as the server sets them, without its background thread, whose work depends on time.
export HTTP_WORKERS=1 DATABASE_TIMEOUT_SECS=60 DATABASE_POOL_SIZE=2 MALLOC_MMAP_THRESHOLD_=65536 MALLOC_ARENA_MAX=2 \
    _RJEM_MALLOC_CONF=background_thread:false,narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0,tcache_max:1024 \
    SLA_SCAN_INTERVAL_SECS=3600 WEBHOOK_POLL_INTERVAL=60s

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null

valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" "$BIN" serve >"$OUT/server.log" 2>&1 &
SERVER=$!
# KEEP=1 leaves the dumps for callgrind_annotate.
trap 'kill -TERM $SERVER 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "dumps in $OUT" || rm -rf "$OUT"' EXIT
for _ in $(seq 1 300); do
    curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
    sleep 1
done
curl -fs "$BASE/readyz" >/dev/null || { echo "server not ready:"; grep -v "^==" "$OUT/server.log" | tail -5; exit 1; }

token() {
    curl -fsS --max-time 120 -X POST "$BASE/api/v1/auth/token" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"bench-password\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
ADMIN=$(token admin)
curl -fs -X POST "$BASE/api/v1/customers" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"code":"C1","name":"Customer 1"}' >/dev/null
curl -fs -X POST "$BASE/api/v1/users" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d '{"username":"bench.desk","password":"bench-password","display_name":"d","roles":["service_desk"]}' >/dev/null
DESK=$(token bench.desk)
BODY=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" bench/create_incident.lua)

create() {
    for _ in $(seq 1 "$1"); do
        curl -fs -o /dev/null -X POST "$BASE/api/v1/incidents" -H "Authorization: Bearer $DESK" \
            -H 'Content-Type: application/json' -d "$BODY"
    done
}
list() {
    for _ in $(seq 1 "$1"); do
        curl -fs -o /dev/null "$BASE/api/v1/incidents?${2:-limit=50}" -H "Authorization: Bearer $DESK"
    done
}
FILTER='status=new&level=high&sort=due_at&limit=50'
read_one() {
    for _ in $(seq 1 "$1"); do
        curl -fs -o /dev/null "$BASE/api/v1/incidents/1" -H "Authorization: Bearer $DESK"
    done
}
# Instructions since the last zeroing, summed over the dump's threads.
count() {
    callgrind_control -d "$SERVER" >/dev/null 2>&1
    sleep 1
    local newest
    newest=$(ls -t "$OUT"/cg.* | head -1)
    grep -h '^summary:\|^totals:' "$newest" | head -1 | awk '{print $2}' | grep . ||
        { echo "no instruction totals in $newest: is the server still under valgrind?" >&2; exit 1; }
}

create 20 # warm-up: code paths, connections, prepared statements
list 5
callgrind_control -z "$SERVER" >/dev/null 2>&1
create "$N"
CREATE=$(count)
callgrind_control -z "$SERVER" >/dev/null 2>&1
list "$N"
LIST=$(count)
callgrind_control -z "$SERVER" >/dev/null 2>&1
list "$N" "$FILTER"
FILTERED=$(count)
callgrind_control -z "$SERVER" >/dev/null 2>&1
read_one "$N"
ONE=$(count)
python3 - "$N" "$CREATE" "$LIST" "$FILTERED" "$ONE" <<'PY'
import sys
n, create, lst, filtered, one = (int(x) for x in sys.argv[1:6])
print(f"POST /api/v1/incidents:          {create / n:>12,.0f} instructions per request ({n} requests)")
print(f"GET /api/v1/incidents?limit=50:  {lst / n:>12,.0f} instructions per request ({n} pages)")
print(f"GET /api/v1/incidents?status=new&level=high&sort=due_at&limit=50: {filtered / n:>12,.0f} per page")
print(f"GET /api/v1/incidents/{{id}}:      {one / n:>12,.0f} instructions per request ({n} reads)")
PY
