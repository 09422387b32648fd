#!/usr/bin/env bash
# The figures of BENCHMARKS.md "Knowledge search and suggestions": on the demo database of
# bench/demo-db.sh (1 000 000 incidents and 100 000 knowledge entries by default), measures
# knowledge search for Chinese and English queries and suggestions for open incidents, first
# one request at a time, then under load with wrk beside pgbench select-only as the machine's
# yardstick, and prints the plans PostgreSQL ran (logged by auto_explain for one request of
# each kind). Needs the local PostgreSQL, curl, python3 and wrk (apt-get install wrk).
#   bash bench/knowledge.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-40}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-8}
PG_LOG=${PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -1)}
. bench/demo-db.sh

QUERIES=("升级出错" "upgrade error" "ORA-00942" "数据库脚本" "据库脚" "打印空白" "HIS 门诊收费"
    "certificate expired" "医保结算失败" "查询超时" "deadlock detected" "上下数据不一致"
    "connection refused" "证书过期" "PACS 影像调阅" "login failure" "护士工作站 界面卡死" "数据")
SEARCHES=$(mktemp)
SUGGESTIONS=$(mktemp)
trap 'kill -TERM $SERVER 2>/dev/null || true; rm -f "$SEARCHES" "$SUGGESTIONS"' EXIT
for q in "${QUERIES[@]}"; do
    echo "/api/v1/knowledge?limit=20&q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$q")"
done >"$SEARCHES"
# Open incidents of every subcategory, newest first: what an engineer asks suggestions for.
psql "$PG/$DB" -Atc "SELECT '/api/v1/incidents/' || id || '/suggestions' FROM incidents
    WHERE status NOT IN ('closed', 'resolved') ORDER BY id DESC LIMIT 200" >"$SUGGESTIONS"
echo "($(psql "$PG/$DB" -Atc "SELECT count(*) FILTER (WHERE status = 'published') || ' published of ' || count(*) FROM knowledge_entries") knowledge entries, $(psql "$PG/$DB" -Atc "SELECT count(*) FROM incident_search") resolved incidents indexed for suggestions)"

echo "== one request at a time ($ROUNDS each, after 2 warm-ups)"
while read -r path; do
    measure "search $(python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.argv[1].split("q=")[1]))' "$path")" "$path"
done <"$SEARCHES"
for path in $(head -5 "$SUGGESTIONS"); do
    measure "suggestions ${path#/api/v1/incidents/}" "$path"
done

if [ -n "$PG_LOG" ] && [ -r "$PG_LOG" ]; then
    echo "== plans (auto_explain of one request each)"
    psql "$PG/$DB" -qc "ALTER DATABASE $DB SET session_preload_libraries = 'auto_explain'" \
        -c "ALTER DATABASE $DB SET auto_explain.log_min_duration = 0" \
        -c "ALTER DATABASE $DB SET auto_explain.log_analyze = on"
    kill -TERM "$SERVER"; wait "$SERVER" || true
    $BIN serve >/dev/null 2>&1 &
    SERVER=$!
    wait_healthz "$BASE"
    for path in "$(sed -n 1p "$SEARCHES")" "$(sed -n 18p "$SEARCHES")" "$(sed -n 1p "$SUGGESTIONS")"; do
        start=$(wc -l <"$PG_LOG")
        curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE$path"
        sleep 0.5
        echo "  $(python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.argv[1]))' "$path"):"
        # The plans of the statements that read the search indexes, without their SQL text.
        tail -n +"$((start + 1))" "$PG_LOG" | python3 -c '
import re, sys
records = re.split(r"^.*LOG:  duration: ", sys.stdin.read(), flags=re.M)[1:]
for record in records:
    if "search_vector" not in record:
        continue
    lines = record.splitlines()
    print("    duration: " + lines[0])
    for line in lines[1:]:
        if line.strip() and "Query Text:" not in line and line.startswith("\t"):
            print("    " + line.strip("\t")[:160])
'
    done
    psql "$PG/$DB" -qc "ALTER DATABASE $DB RESET ALL"
    kill -TERM "$SERVER"; wait "$SERVER" || true
    $BIN serve >/dev/null 2>&1 &
    SERVER=$!
    wait_healthz "$BASE"
fi

if ! command -v wrk >/dev/null; then
    echo "wrk is not installed (apt-get install wrk); skipping the load figures"
    exit 0
fi
echo "== pgbench select-only, $CONNECTIONS clients, $DURATION (PostgreSQL alone)"
pgbench_select_only "$CONNECTIONS" "$DURATION"
for kind in search suggestions; do
    list=$SEARCHES
    [ $kind = suggestions ] && list=$SUGGESTIONS
    for clients in 2 "$CONNECTIONS"; do
        echo "== $kind under load: wrk -t2 -c$clients -d$DURATION over $(wc -l <"$list") paths"
        wrk -t2 -c"$clients" -d"$DURATION" --latency -s bench/paths.lua \
            -H "Authorization: Bearer $TOKEN" "$BASE" -- "$list" \
            | grep -E "Requests/sec|Latency  |50%|90%|99%|other than 200" | sed 's/^ */  /'
    done
done
