#!/usr/bin/env bash
# The figures of BENCHMARKS.md "Incident search": on the demo database of bench/demo-db.sh
# (1 000 000 incidents by default), measures `GET /incidents?q=` (SPEC §14) for queries from
# one matching nearly every incident to one matching none, a number, and a customer's search,
# first one request at a time, then under load (wrk, CONNECTIONS clients, p99 from --latency)
# beside pgbench select-only from the same run; then prints the plan of the commonest query.
# Needs the local PostgreSQL, curl, python3 and wrk (apt-get install wrk).
#   bash bench/search.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-40}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-8}
. bench/demo-db.sh

# From the commonest words of the demo text (every description says 处理) to words it never has.
QUERIES=("处理" "门诊" "HIS 门诊" "收费系统 住院部" "PACS 放射科 影像" "医保接口 收费处 结算"
    "撤销" "自行解决" "补丁" "INC-000123" "INC-987654" "000777" "upgrade error" "不存在的词语"
    "检验科 LIS")
SEARCHES=$(mktemp)
CUSTOMER_SEARCHES=$(mktemp)
trap 'kill -TERM $SERVER 2>/dev/null || true; rm -f "$SEARCHES" "$CUSTOMER_SEARCHES"' EXIT
quote() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
for q in "${QUERIES[@]}"; do echo "/api/v1/incidents?q=$(quote "$q")"; done >"$SEARCHES"
echo "($(psql "$PG/$DB" -Atc "SELECT count(*) FROM incident_text") incidents indexed for search)"
CUSTOMER_TOKEN=$(curl -fs -X POST "$BASE/api/v1/auth/token" -H 'Content-Type: application/json' \
    -d '{"username":"demo.h0001","password":"demo-password"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

echo "== one request at a time ($ROUNDS each, after 2 warm-ups), as demo.manager01"
while read -r path; do
    q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.argv[1].split("q=")[1]))' "$path")
    hits=$(curl -fs -H "Authorization: Bearer $TOKEN" "$BASE$path&limit=200" \
        | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
    measure "q=$q ($hits on the first 200)" "$path"
done <"$SEARCHES"
echo "== as a customer (demo.h0001: its own incidents, public text only)"
SAVED=$TOKEN
TOKEN=$CUSTOMER_TOKEN
for q in "处理" "门诊" "HIS 门诊"; do
    measure "customer q=$q" "/api/v1/incidents?q=$(quote "$q")"
done
TOKEN=$SAVED

echo "== plans: q=处理 (every incident matches; the newest 1000 are ranked), and q=INC-000123"
psql "$PG/$DB" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT incidents.id FROM incidents
    WHERE incidents.id IN (SELECT t.incident_id FROM incident_text t
          WHERE t.search_vector @@ to_tsquery('simple', '处理'))
    ORDER BY incidents.id DESC LIMIT 1000" | sed 's/^/  /'
psql "$PG/$DB" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT incidents.id FROM incidents
    WHERE incidents.id IN (SELECT t.incident_id FROM incident_text t
          WHERE t.search_vector @@ plainto_tsquery('english', 'INC-000123') UNION ALL SELECT 123)
    ORDER BY incidents.id DESC LIMIT 1000" | sed 's/^/  /'

if ! command -v wrk >/dev/null; then
    echo "wrk is not installed (apt-get install wrk); skipping the load figures"
    exit 0
fi
echo "== pgbench select-only, $CONNECTIONS clients, $DURATION (PostgreSQL alone)"
pgbench_select_only "$CONNECTIONS" "$DURATION"
echo "== search under load: wrk -t2 -c$CONNECTIONS -d$DURATION over $(wc -l <"$SEARCHES") queries"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/paths.lua \
    -H "Authorization: Bearer $TOKEN" "$BASE" -- "$SEARCHES" \
    | grep -E "Requests/sec|Latency  |50%|90%|99%|other than 200" | sed 's/^ */  /'
