#!/usr/bin/env bash
# Reruns the figures in BENCHMARKS.md on this machine: cold start, per-test database cost,
# throughput and latency of a few endpoints under wrk, and the server's memory after load.
# Needs the local PostgreSQL, curl, jq-free python3, and wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

DB=bench_incident_desk
PORT=${PORT:-18099}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
# BIN=path/to/incident-desk measures another build (e.g. an older commit's) with the same load.
. bench/lib.sh
server_env
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null

wait_ready() {
    for _ in $(seq 1 2000); do
        curl -fs "$BASE/healthz" >/dev/null 2>&1 && return 0
        sleep 0.005
    done
    echo "server did not start" >&2
    return 1
}

# Sets SERVER and STARTED_MS (no command substitution: the server would hold its pipe open).
start_server() {
    local t0 t1
    t0=$(date +%s%N)
    $BIN serve >/dev/null 2>&1 &
    SERVER=$!
    wait_ready
    t1=$(date +%s%N)
    STARTED_MS=$(( (t1 - t0) / 1000000 ))
}

echo "== cold start (process start to first /healthz answer)"
start_server
echo "first start, creating and migrating the database: $STARTED_MS ms"
kill -TERM $SERVER; wait $SERVER || true
start_server
echo "start on an existing database:                     $STARTED_MS ms"

echo "== per-test database: CREATE DATABASE ... TEMPLATE / DROP DATABASE (20 rounds)"
kill -TERM $SERVER; wait $SERVER || true
python3 - "$PG" "$DB" <<'PY'
import subprocess, sys, time
pg, template = sys.argv[1], sys.argv[2]
def run(sql):
    subprocess.run(["psql", f"{pg}/postgres", "-qc", sql], check=True)
create, drop = [], []
for i in range(20):
    t = time.perf_counter(); run(f"CREATE DATABASE bench_clone TEMPLATE {template}"); create.append(time.perf_counter() - t)
    t = time.perf_counter(); run("DROP DATABASE bench_clone"); drop.append(time.perf_counter() - t)
med = lambda xs: sorted(xs)[len(xs) // 2] * 1000
print(f"create median {med(create):.0f} ms, drop median {med(drop):.0f} ms (psql process start included)")
PY

start_server
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
TOKEN=$(curl -fs -X POST "$BASE/api/v1/auth/token" -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"bench-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for i in $(seq 1 50); do
    curl -fs -X POST "$BASE/api/v1/customers" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -d "{\"code\":\"C$i\",\"name\":\"Customer $i\"}" >/dev/null
done

if ! command -v wrk >/dev/null; then
    echo "wrk is not installed (apt-get install wrk); skipping the load figures"
    exit 0
fi
# What PostgreSQL itself does on this machine in this run: the yardstick for the figures below.
echo "== pgbench, $CONNECTIONS clients, $DURATION (PostgreSQL alone)"
pgbench_db
echo "select-only (-S): tps = $(pgbench_select "$CONNECTIONS" "$DURATION")"
echo "single-row insert: tps = $(pgbench_insert "$CONNECTIONS" "$DURATION")"
drop_pgbench_db
load() {
    echo "== wrk -t2 -c$CONNECTIONS -d$DURATION $1"
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$BASE$1" \
        | grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx'
}
load /healthz
load /api/v1/taxonomy
load /api/v1/users/me
load "/api/v1/customers?limit=50"
# A desk user records incidents as fast as wrk sends them (each: auth, SLA targets, insert,
# history entry and outbox event in one transaction).
curl -fs -X POST "$BASE/api/v1/users" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"username":"bench.desk","password":"bench-password","display_name":"d","roles":["service_desk","incident_manager"]}' >/dev/null
DESK=$(curl -fs -X POST "$BASE/api/v1/auth/token" -H 'Content-Type: application/json' \
    -d '{"username":"bench.desk","password":"bench-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "== wrk -t2 -c$CONNECTIONS -d$DURATION POST /api/v1/incidents"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/create_incident.lua -H "Authorization: Bearer $DESK" \
    "$BASE/api/v1/incidents" | grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx'
# Fresh statistics, as autovacuum would give them shortly after such a burst of inserts.
psql "$PG/$DB" -qc "ANALYZE"
COUNT=$(psql "$PG/$DB" -Atc "SELECT count(*) FROM incidents")
echo "   ($COUNT incidents now in the database)"
TOKEN=$DESK
load "/api/v1/incidents?limit=50"
load "/api/v1/incidents?status=new&level=high&sort=due_at&limit=50"
echo "== server memory after load: $(ps -o rss= -p $SERVER | awk '{printf "%.1f MiB", $1/1024}') RSS"
