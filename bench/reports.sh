#!/usr/bin/env bash
# The figures of BENCHMARKS.md "Reports over a million incidents": on the demo database of
# bench/demo-db.sh (seeded once with `incident-desk seed-demo`), measures the
# 24-month and quarterly KPI queries, a month's and a year's statistics report and the recurring
# report (sequential requests, server-side time included), prints their query plans, and puts
# the incident list under load with wrk beside pgbench select-only as the machine's yardstick.
# Needs the local PostgreSQL, curl, python3 and wrk (apt-get install wrk).
#   INCIDENTS=1000000 MONTHS=24 bash bench/reports.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-20}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-16}
. bench/demo-db.sh

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
pgbench_select_only "$CONNECTIONS" "$DURATION"
for clients in 8 "$CONNECTIONS"; do
    echo "== incident list under load: wrk -t2 -c$clients -d$DURATION"
    wrk -t2 -c"$clients" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" \
        "$BASE/api/v1/incidents?status=new&level=high&sort=due_at&limit=50" \
        | grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx" | sed 's/^/  /'
done
