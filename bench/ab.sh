#!/usr/bin/env bash
# A/B of two builds on one database: `bash bench/ab.sh OLD_BIN NEW_BIN`. Seeds incidents once,
# then alternates the two servers ROUNDS times (default 4), each serving the same incident list
# pages under wrk, so that database state and machine noise hit both alike. The build that goes
# first changes every round: the second server of a round measured 6-11 % slower whichever it
# was. Prints req/s per round and the mean of each build. Needs the local PostgreSQL and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."

OLD=${1:?usage: bench/ab.sh OLD_BIN NEW_BIN}
NEW=${2:?usage: bench/ab.sh OLD_BIN NEW_BIN}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=bench_ab
PORT=${PORT:-18097}
BASE=http://127.0.0.1:$PORT
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
export DATABASE_URL=$PG/$DB BIND_ADDR=127.0.0.1:$PORT ADMIN_PASSWORD=bench-password \
    JWT_SECRET=bench-secret-bench-secret-bench-secret RUST_LOG=warn

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
SERVER=
trap '[ -n "$SERVER" ] && kill -TERM $SERVER 2>/dev/null || true' EXIT
start() {
    "$1" serve >/dev/null 2>&1 &
    SERVER=$!
    for _ in $(seq 1 2000); do
        curl -fs "$BASE/healthz" >/dev/null 2>&1 && return 0
        sleep 0.005
    done
    echo "server did not start" >&2
    return 1
}
stop() { kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=; }
token() {
    curl -fs -X POST "$BASE/api/v1/auth/token" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"bench-password\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# Seed with the old build: a customer, a desk user and 5 000 incidents.
start "$OLD"
ADMIN=$(token admin)
curl -fs -X POST "$BASE/api/v1/customers" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"code":"C1","name":"Customer 1"}' >/dev/null
curl -fs -X POST "$BASE/api/v1/users" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d '{"username":"bench.desk","password":"bench-password","display_name":"d","roles":["service_desk"]}' >/dev/null
DESK=$(token bench.desk)
wrk -t2 -c"$CONNECTIONS" -d5s -s bench/create_incident.lua -H "Authorization: Bearer $DESK" \
    "$BASE/api/v1/incidents" >/dev/null
stop
psql "$PG/$DB" -qc "ANALYZE"
echo "($(psql "$PG/$DB" -Atc "SELECT count(*) FROM incidents") incidents)"

rate() {
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: Bearer $DESK" "$BASE$1" |
        awk '/Requests\/sec/ {print $2}'
}
PAGES=("/api/v1/incidents?limit=50" "/api/v1/incidents?status=new&level=high&sort=due_at&limit=50")
declare -A SUM
for round in $(seq 1 "$ROUNDS"); do
    order="old new"
    [ $((round % 2)) = 0 ] && order="new old"
    for build in $order; do
        if [ $build = old ]; then start "$OLD"; else start "$NEW"; fi
        line="round $round $build:"
        for i in "${!PAGES[@]}"; do
            r=$(rate "${PAGES[$i]}")
            line="$line ${PAGES[$i]} $r"
            SUM[$build$i]=$(python3 -c "print(${SUM[$build$i]:-0} + $r)")
        done
        echo "$line"
        stop
    done
done
for i in "${!PAGES[@]}"; do
    python3 -c "o=${SUM[old$i]}/$ROUNDS; n=${SUM[new$i]}/$ROUNDS; print(f'${PAGES[$i]}: old {o:.0f} req/s, new {n:.0f} req/s ({(n/o-1)*100:+.1f} %)')"
done
