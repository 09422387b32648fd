# Sourced by the benchmarks over the demo history (bench/reports.sh, bench/knowledge.sh): builds
# the release server unless BIN names one, seeds DB with `incident-desk seed-demo` once (reused
# while it holds INCIDENTS incidents and KNOWLEDGE knowledge entries), starts the server on it
# and signs in as TOKEN_USER (demo.manager01). Needs the local PostgreSQL, curl and python3.
INCIDENTS=${INCIDENTS:-1000000}
KNOWLEDGE=${KNOWLEDGE:-$((INCIDENTS / 10))}
MONTHS=${MONTHS:-24}
DB=${DB:-bench_demo_$INCIDENTS}
PORT=${PORT:-18098}
# The history ends here, so that every run asks for the same months.
UNTIL=${UNTIL:-2026-11-30T00:00:00Z}
. bench/lib.sh
server_env
export DEMO_PASSWORD=demo-password

count() { psql "$PG/$DB" -Atc "SELECT count(*) FROM $1" 2>/dev/null || echo 0; }
if [ "$(count incidents)" != "$INCIDENTS" ] || [ "$(count knowledge_entries)" != "$KNOWLEDGE" ]; then
    echo "== seeding $INCIDENTS incidents and $KNOWLEDGE knowledge entries over $MONTHS months into $DB"
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
    /usr/bin/time -f "seed-demo: %e s, %M KiB peak" $BIN seed-demo --incidents "$INCIDENTS" \
        --knowledge "$KNOWLEDGE" --months "$MONTHS" --seed 1 --until "$UNTIL"
fi
psql "$PG/$DB" -qc "VACUUM ANALYZE" >/dev/null

$BIN serve >/dev/null 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
wait_healthz "$BASE"
TOKEN=$(curl -fs -X POST "$BASE/api/v1/auth/token" -H 'Content-Type: application/json' \
    -d "{\"username\":\"${TOKEN_USER:-demo.manager01}\",\"password\":\"demo-password\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# pgbench select-only with $1 clients for $2 (e.g. 15s): the machine's yardstick, measured in
# the same run as the figures it is compared with.
pgbench_select_only() {
    pgbench_db
    echo "  tps = $(pgbench_select "$1" "$2")"
    drop_pgbench_db
}

# `measure NAME PATH`: ROUNDS sequential GETs of PATH after two warm-ups; median, p95, max.
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
