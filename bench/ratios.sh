#!/usr/bin/env bash
# The hot paths as a share of what PostgreSQL itself does on this machine, in one run:
#   pgbench select-only (16 clients) and a single-row insert script (64 clients) are the
#   yardsticks; then wrk -t2 -c64 against the release server:
#   POST /api/v1/incidents                                  vs the insert yardstick (goal ≥ 33 %)
#   GET  /api/v1/incidents/{id}                             vs select-only          (goal ≥ 50 %)
#   GET  /api/v1/incidents?status=new&sort=due_at&limit=50  vs select-only          (goal ≥ 15 %)
# and the server's resident memory: idle after start, and the peak over the whole run
# (VmHWM; goals < 40 MB and < 100 MB). For each endpoint it also prints the CPU time the server
# and PostgreSQL's processes spent per request, from /proc. Last, what bounds each goal: the
# stack's floor (GET /readyz under the same load), and PostgreSQL alone running the statements
# each endpoint sends (captured from its statement log, replayed by pgbench; needs the log
# readable at /var/log/postgresql, as root on Debian), with the server's rate as a share of that
# replay (the create's goal: at least 80 %). KEEP=1 keeps the replayed scripts.
# Needs the local PostgreSQL, pgbench, python3 and wrk (apt-get install wrk).
# DURATION (default 10s) sets each measurement's length; BIN measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."

DB=bench_ratios
PORT=${PORT:-18093}
DURATION=${DURATION:-10s}
SECS=${DURATION%s}
. bench/lib.sh
fresh_server
rss_mb() { awk "/^$1:/ {printf \"%.1f\", \$2/1024}" "/proc/$SERVER/status"; }
sleep 1
IDLE_RSS=$(rss_mb VmRSS)

CUSTOMER=$(curl -fs -X POST "$BASE/api/v1/customers" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"code":"C1","name":"Customer 1"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
create_user ratios.desk service_desk
DESK=$(token ratios.desk)

echo "== yardsticks: pgbench, $DURATION each (PostgreSQL alone)"
pgbench_db
tps() { _tps; }
SELECT_TPS=$(pgbench_select 16 "$DURATION")
INSERT_TPS=$(pgbench_insert 64 "$DURATION")
drop_pgbench_db
printf 'pgbench select-only, 16 clients:       %10.0f TPS\n' "$SELECT_TPS"
printf 'pgbench single-row insert, 64 clients: %10.0f TPS\n' "$INSERT_TPS"

# CPU time (user + system, in clock ticks) of the server, and of all of PostgreSQL's processes.
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
postgres_ticks() {
    local pid total=0
    for pid in $(pgrep -u postgres); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# Requests/s of each endpoint measured, by name.
declare -A SERVED
# Prints requests/s, median and 99th percentile of one wrk run, the share of a yardstick, and
# the server's and PostgreSQL's CPU time per request.
measure() {
    local name=$1 yardstick=$2 goal=$3
    shift 3
    local out rps server0 postgres0 server1 postgres1
    server0=$(server_ticks)
    postgres0=$(postgres_ticks)
    out=$(wrk -t2 -c64 -d"$DURATION" --latency "$@")
    server1=$(server_ticks)
    postgres1=$(postgres_ticks)
    if echo "$out" | grep -q 'Non-2xx'; then
        echo "$out" | grep -E 'Non-2xx|Socket errors' >&2
        echo "$name: some answers were not 2xx" >&2
        exit 1
    fi
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    SERVED[$name]=$rps
    python3 - "$name" "$rps" "$yardstick" "$goal" \
        "$(echo "$out" | awk '$1 == "50%" {print $2}')" "$(echo "$out" | awk '$1 == "99%" {print $2}')" \
        "$((server1 - server0))" "$((postgres1 - postgres0))" "$(getconf CLK_TCK)" "$SECS" <<'PY'
import sys
name, rps, yardstick, goal, p50, p99, server, postgres, hz, secs = sys.argv[1:]
share = float(rps) / float(yardstick) * 100
verdict = ""
if goal != "-":
    verdict = f" ({'meets' if share >= float(goal) else 'misses'} the {goal} % goal)"
print(f"{name:<58} {float(rps):9.0f} req/s  p50 {p50:>8}  p99 {p99:>8}  "
      f"{share:5.1f} % of its yardstick{verdict}")
per_request = 1e6 / float(hz) / (float(rps) * float(secs))
print(f"{'':<58} CPU per request: server {int(server) * per_request:5.0f} µs, "
      f"PostgreSQL {int(postgres) * per_request:5.0f} µs")
PY
}

echo "== wrk -t2 -c64, $DURATION each, against the server"
measure "POST /api/v1/incidents" "$INSERT_TPS" 33 -s bench/create_incident.lua \
    -H "Authorization: Bearer $DESK" "$BASE/api/v1/incidents"
psql "$PG/$DB" -qc "ANALYZE"
COUNT=$(psql "$PG/$DB" -Atc "SELECT count(*) FROM incidents")
ID=$(psql "$PG/$DB" -Atc "SELECT id FROM incidents ORDER BY id LIMIT 1 OFFSET $((COUNT / 2))")
echo "   ($COUNT incidents now stored; reading incident $ID)"
measure "GET /api/v1/incidents/{id}" "$SELECT_TPS" 50 \
    -H "Authorization: Bearer $DESK" "$BASE/api/v1/incidents/$ID"
measure "GET /api/v1/incidents?status=new&sort=due_at&limit=50" "$SELECT_TPS" 15 \
    -H "Authorization: Bearer $DESK" "$BASE/api/v1/incidents?status=new&sort=due_at&limit=50"

echo "== server memory: idle after start ${IDLE_RSS} MB (goal < 40), peak during the run $(rss_mb VmHWM) MB (goal < 100), now $(rss_mb VmRSS) MB"

echo "== what bounds each goal"
# The floor of any endpoint that reads the database through this stack: an HTTP request, one
# hop to a blocking thread, one pooled connection, one `SELECT 1`.
measure "GET /readyz (the stack's floor)" "$SELECT_TPS" - "$BASE/readyz"

# PostgreSQL alone, sending the statements each endpoint sends, with their values: a second
# server instance on the same database logs them (libpq's PGOPTIONS reaches only its pool's
# connections), one request each; pgbench replays them as many clients as the yardstick.
LOG=$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -1)
if [ -z "$LOG" ] || [ ! -r "$LOG" ]; then
    echo "(PostgreSQL's log is not readable here: no replay of the endpoints' statements)"
    exit 0
fi
REPLAY_PORT=$((PORT + 1))
REPLAY_BASE=http://127.0.0.1:$REPLAY_PORT
PGOPTIONS="-c log_statement=all" BIND_ADDR=127.0.0.1:$REPLAY_PORT WEBHOOK_POLL_INTERVAL=60s \
    SLA_SCAN_INTERVAL_SECS=3600 $BIN serve >/dev/null 2>&1 &
REPLAY_SERVER=$!
trap 'kill -TERM $SERVER $REPLAY_SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "$REPLAY_BASE/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
BODY=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" bench/create_incident.lua)
REPLAY=$(mktemp -d)
# Writes to $REPLAY/NAME.sql the statements of one request (after one unlogged warm-up of its
# prepared statements, which a pooled connection keeps).
capture() {
    local name=$1 start
    shift
    curl -fs -o /dev/null "$@"
    sleep 0.2
    start=$(($(wc -l <"$LOG") + 1))
    curl -fs -o /dev/null "$@"
    sleep 0.2
    tail -n +"$start" "$LOG" | python3 bench/statements.py "$DB" >"$REPLAY/$name.sql"
}
capture create -X POST "$REPLAY_BASE/api/v1/incidents" -H "Authorization: Bearer $DESK" \
    -H 'Content-Type: application/json' -d "$BODY"
capture one "$REPLAY_BASE/api/v1/incidents/$ID" -H "Authorization: Bearer $DESK"
capture list "$REPLAY_BASE/api/v1/incidents?status=new&sort=due_at&limit=50" -H "Authorization: Bearer $DESK"
kill -TERM $REPLAY_SERVER
# pgbench replays an endpoint's statements with as many clients as its yardstick, and with the
# server's pool size (what the server itself keeps open); the server's own rate is printed as a
# share of the first.
replay() {
    local name=$1 script=$2 clients=$3 yardstick=$4 goal=$5 tps pooled
    tps=$(pgbench -n -M prepared -f "$REPLAY/$script.sql" -c "$clients" -j 2 -T "$SECS" "$PG/$DB" 2>/dev/null | tps)
    pooled=$(pgbench -n -M prepared -f "$REPLAY/$script.sql" -c 10 -j 2 -T "$SECS" "$PG/$DB" 2>/dev/null | tps)
    printf '%-58s %9.0f TPS in %d statement(s): %5.1f %% of its yardstick (the goal is %s %%)\n' \
        "PostgreSQL alone: $name" "$tps" "$(grep -cE ';$|gset$' "$REPLAY/$script.sql")" \
        "$(python3 -c "print($tps / $yardstick * 100)")" "$goal"
    printf '%-58s %9.0f TPS with 10 clients; the server reaches %.1f %% of the %s-client replay\n' \
        "" "$pooled" "$(python3 -c "print(${SERVED[$name]} / $tps * 100)")" "$clients"
}
replay "POST /api/v1/incidents" create 64 "$INSERT_TPS" 33
replay "GET /api/v1/incidents/{id}" one 16 "$SELECT_TPS" 50
replay "GET /api/v1/incidents?status=new&sort=due_at&limit=50" list 16 "$SELECT_TPS" 15

# What the create's schema costs: the replay again, 64 clients, on scratch copies of the database
# with one kind of index or constraint dropped (the copies only; the schema keeps them all).
kill -TERM "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true
TABLES="'incidents', 'incident_history', 'incident_text', 'outbox_events', 'webhook_deliveries'"
drop_all() { # $1: a query listing statements to run
    psql "$PG/bench_scratch" -qAt -c "$1" | psql "$PG/bench_scratch" -q >/dev/null
}
echo "== what the create's schema costs: its replay, 64 clients, on scratch copies"
for variant in "as it is" "without the search index (GIN)" "without the incident's secondary indexes" \
    "without foreign keys" "without CHECK constraints"; do
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS bench_scratch WITH (FORCE)"
    psql "$PG/postgres" -qc "CREATE DATABASE bench_scratch TEMPLATE $DB"
    case $variant in
    *GIN*) drop_all "SELECT 'DROP INDEX ' || indexname || ';' FROM pg_indexes WHERE tablename = 'incident_text' AND indexdef LIKE '%USING gin%'" ;;
    *secondary*) drop_all "SELECT 'DROP INDEX ' || i.indexrelid::regclass || ';' FROM pg_index i WHERE i.indrelid = 'incidents'::regclass AND NOT i.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)" ;;
    *foreign*) drop_all "SELECT 'ALTER TABLE ' || conrelid::regclass || ' DROP CONSTRAINT ' || quote_ident(conname) || ';' FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text IN ($TABLES)" ;;
    *CHECK*) drop_all "SELECT 'ALTER TABLE ' || conrelid::regclass || ' DROP CONSTRAINT ' || quote_ident(conname) || ';' FROM pg_constraint WHERE contype = 'c' AND conrelid::regclass::text IN ($TABLES)" ;;
    esac
    psql "$PG/bench_scratch" -qc "VACUUM ANALYZE" >/dev/null
    tps=$(pgbench -n -M prepared -f "$REPLAY/create.sql" -c 64 -j 2 -T "$SECS" "$PG/bench_scratch" 2>/dev/null | tps)
    printf '  %-44s %7.0f TPS\n' "$variant" "$tps"
done
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS bench_scratch WITH (FORCE)"
if [ -n "${KEEP:-}" ]; then echo "(the replayed scripts are in $REPLAY)"; else rm -rf "$REPLAY"; fi
