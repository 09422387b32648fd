#!/usr/bin/env bash
# The figures of BENCHMARKS.md "Reports over a million incidents": seeds a demo database with
# `incident-desk seed-demo` (once; reused while it has the incidents), then measures the
# 24-month and quarterly KPI queries, a month's and a year's statistics report and the recurring
# report (sequential requests, server-side time included), prints their query plans, and puts
# the incident list under load with wrk beside pgbench select-only as the machine's yardstick.
# Needs the local PostgreSQL, curl, python3 and wrk (apt-get install wrk).
#   INCIDENTS=1000000 MONTHS=24 bash bench/reports.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${PG:-postgres://postgres@127.0.0.1:5432}
INCIDENTS=${INCIDENTS:-1000000}
MONTHS=${MONTHS:-24}
DB=${DB:-bench_demo_$INCIDENTS}
PORT=${PORT:-18098}
BASE=http://127.0.0.1:$PORT
# The history ends here, so that the reports below ask for the same months in every run.
UNTIL=${UNTIL:-2026-11-30T00:00:00Z}
ROUNDS=${ROUNDS:-20}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-16}
export DATABASE_URL=$PG/$DB BIND_ADDR=127.0.0.1:$PORT ADMIN_PASSWORD=bench-password \
    JWT_SECRET=bench-secret-bench-secret-bench-secret RUST_LOG=warn DEMO_PASSWORD=demo-password

if [ -z "${BIN:-}" ]; then
    cargo build --release -q
    BIN=target/release/incident-desk
fi

have=$(psql "$PG/$DB" -Atc "SELECT count(*) FROM incidents" 2>/dev/null || echo 0)
if [ "$have" != "$INCIDENTS" ]; then
    echo "== seeding $INCIDENTS incidents over $MONTHS months into $DB"
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
    /usr/bin/time -f "seed-demo: %e s, %M KiB peak" \
        $BIN seed-demo --incidents "$INCIDENTS" --months "$MONTHS" --seed 1 --until "$UNTIL"
fi
psql "$PG/$DB" -qc "VACUUM ANALYZE" >/dev/null

$BIN serve >/dev/null 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN=$(curl -fs -X POST "$BASE/api/v1/auth/token" -H 'Content-Type: application/json' \
    -d '{"username":"demo.manager01","password":"demo-password"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# The last whole month and year before UNTIL, and the 24 months and 8 quarters up to it.
read -r LAST_MONTH FIRST_MONTH LAST_QUARTER FIRST_QUARTER LAST_YEAR < <(python3 - "$UNTIL" <<'PY'
import sys, datetime
until = datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00"))
month = until.year * 12 + until.month - 1 - 1
quarter = until.year * 4 + (until.month - 1) // 3 - 1
m = lambda i: f"{i // 12}-{i % 12 + 1:02d}"
q = lambda i: f"{i // 4}-Q{i % 4 + 1}"
print(m(month), m(month - 23), q(quarter), q(quarter - 7), until.year - 1)
PY
)

measure() {
    local name=$1 path=$2
    python3 - "$BASE$path" "$TOKEN" "$ROUNDS" "$name" <<'PY'
import sys, time, urllib.request
url, token, rounds, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
times, size = [], 0
for i in range(rounds + 2):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    t = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        size = len(response.read())
    if i >= 2:  # two warm-up requests
        times.append((time.perf_counter() - t) * 1000)
times.sort()
pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
print(f"{name:<34} median {pick(0.5):6.1f} ms  p95 {pick(0.95):6.1f} ms  max {times[-1]:6.1f} ms  ({size} bytes)")
PY
}

echo "== reports over $INCIDENTS incidents ($ROUNDS sequential requests each, after 2 warm-ups)"
measure "KPIs, 24 months ($FIRST_MONTH..$LAST_MONTH)" "/api/v1/kpis?granularity=month&from=$FIRST_MONTH&to=$LAST_MONTH"
measure "KPIs, 8 quarters" "/api/v1/kpis?granularity=quarter&from=$FIRST_QUARTER&to=$LAST_QUARTER"
measure "KPIs, 24 months, one customer" "/api/v1/kpis?granularity=month&from=$FIRST_MONTH&to=$LAST_MONTH&customer_id=1&level=high"
measure "statistics, month $LAST_MONTH" "/api/v1/reports/statistics?granularity=month&period=$LAST_MONTH"
measure "statistics, year $LAST_YEAR" "/api/v1/reports/statistics?granularity=year&period=$LAST_YEAR"
measure "recurring, last 7 days" "/api/v1/reports/recurring?days=7&min_customers=3"
measure "incident list (one request)" "/api/v1/incidents?status=new&level=high&sort=due_at&limit=50"

echo "== plans"
MONTH_START=$LAST_MONTH-01
psql "$PG/$DB" -qAt <<SQL | grep -E "Scan|Execution|Aggregate|Sort Method" | sed 's/^/  /'
\echo KPIs, 24 months:
EXPLAIN ANALYZE SELECT date_trunc('month', month::timestamp), sum(closed), sum(resolved), sum(resolved_on_time), sum(follow_ups), sum(follow_ups_on_time) FROM kpi_monthly WHERE month >= '$FIRST_MONTH-01' AND month < date '$MONTH_START' + interval '1 month' GROUP BY 1;
\echo statistics, one month:
EXPLAIN ANALYZE SELECT dimension, code, subcode, sum(count), sum(breached) FROM statistics_monthly WHERE month >= '$MONTH_START' AND month < date '$MONTH_START' + interval '1 month' GROUP BY 1, 2, 3;
\echo time to resolve, one month:
EXPLAIN ANALYZE SELECT level, count(*), avg(minutes), percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes), percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) FROM resolve_times WHERE month >= '$MONTH_START' AND month < date '$MONTH_START' + interval '1 month' GROUP BY level;
\echo recurring pairs, 7 days:
EXPLAIN ANALYZE SELECT subcategory, source_system, count(DISTINCT customer_id) FROM incidents WHERE created_at >= timestamptz '$UNTIL' - interval '7 days' AND subcategory IS NOT NULL AND source_system IS NOT NULL AND customer_id IS NOT NULL GROUP BY 1, 2 HAVING count(DISTINCT customer_id) >= 3;
\echo incident list:
EXPLAIN ANALYZE SELECT id FROM incidents WHERE status = 'new' AND level = 'high' ORDER BY due_at, id LIMIT 51;
SQL
echo "  summary rows: $(psql "$PG/$DB" -Atc "SELECT (SELECT count(*) FROM kpi_monthly) || ' kpi_monthly, ' || (SELECT count(*) FROM statistics_monthly) || ' statistics_monthly, ' || (SELECT count(*) FROM resolve_times) || ' resolve_times'")"

if ! command -v wrk >/dev/null; then
    echo "wrk is not installed (apt-get install wrk); skipping the load figures"
    exit 0
fi
echo "== pgbench select-only, $CONNECTIONS clients, $DURATION (PostgreSQL alone)"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS bench_pgbench" && psql "$PG/postgres" -qc "CREATE DATABASE bench_pgbench"
pgbench -q -i -s 10 "$PG/bench_pgbench" >/dev/null 2>&1
pgbench -S -n -c "$CONNECTIONS" -j 2 -T "${DURATION%s}" "$PG/bench_pgbench" 2>/dev/null | grep -E "^tps" | sed 's/^/  /'
for clients in 8 "$CONNECTIONS"; do
    echo "== incident list under load: wrk -t2 -c$clients -d$DURATION"
    wrk -t2 -c"$clients" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" \
        "$BASE/api/v1/incidents?status=new&level=high&sort=due_at&limit=50" \
        | grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx" | sed 's/^/  /'
done
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS bench_pgbench"
