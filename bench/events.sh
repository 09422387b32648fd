#!/usr/bin/env bash
# Event-storm benchmark (issue: monitoring intake): wrk posts PagerDuty v2 triggers, authenticated
# by an API token, spread over 1 000 dedup keys and then all on one hot key. Checks that no event
# is lost (the sum of `occurrences` equals the number of 202 answers) and reports pgbench's
# single-row insert TPS from the same run as the yardstick, and the server's RSS afterwards.
# Needs the local PostgreSQL, python3 and wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

DB=bench_events
PORT=${PORT:-18098}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
. bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
fresh_server
curl -fs -X POST "$BASE/api/v1/customers" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"code":"C1","name":"Customer 1"}' >/dev/null
TOKEN=$(curl -fs -X POST "$BASE/api/v1/api-tokens" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"name":"bench","roles":["integration"]}' | json '["token"]')

echo "== pgbench single-row insert, $CONNECTIONS clients, $DURATION (PostgreSQL alone)"
pgbench_db
echo "tps = $(pgbench_insert "$CONNECTIONS" "$DURATION")"
drop_pgbench_db

accepted_so_far() {
    curl -fs "$BASE/metrics" | python3 -c '
import re, sys
total = 0
for line in sys.stdin:
    m = re.match(r"incident_desk_monitoring_events_total\{result=\"(created|deduplicated)\",source=\"events\"\} (\d+)", line)
    if m:
        total += int(m.group(2))
print(total)'
}

storm() {
    local keys=$1 prefix=$2 before after
    before=$(accepted_so_far)
    echo "== wrk -t2 -c$CONNECTIONS -d$DURATION POST /api/v1/events, triggers over $keys key(s)"
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/event_storm.lua \
        -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/events" -- "$keys" "$prefix" \
        | grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx|answers:'
    sleep 1
    after=$(accepted_so_far)
    # The server's own count of 202 answers: wrk stops counting with requests still in flight.
    psql "$PG/$DB" -Atc "SELECT 'server answered 202 to $((after - before)) triggers; incidents: ' || count(*) \
        || ', sum of occurrences: ' || coalesce(sum(occurrences), 0) FROM incidents WHERE dedup_key LIKE '$prefix-%'"
}
storm 1000 spread
storm 1 hot
echo "== server memory after load: $(ps -o rss= -p $SERVER | awk '{printf "%.1f MiB", $1/1024}') RSS"
