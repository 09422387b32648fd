#!/usr/bin/env bash
# The figures of BENCHMARKS.md "A flood of sign-ins": GET /api/v1/users/me latency for a
# signed-in user (wrk, 2 clients) while idle, then while 64 clients sign in as fast as they can
# (with the right password, which is never throttled, so every attempt hashes; then with a wrong
# one, which the throttle refuses after 5 failures). Needs the local PostgreSQL and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=bench_login_flood
PORT=${PORT:-18096}
BASE=http://127.0.0.1:$PORT
DURATION=${DURATION:-10s}
export DATABASE_URL=$PG/$DB BIND_ADDR=127.0.0.1:$PORT ADMIN_PASSWORD=bench-password \
    JWT_SECRET=bench-secret-bench-secret-bench-secret RUST_LOG=warn
if [ -z "${BIN:-}" ]; then
    cargo build --release -q
    BIN=target/release/incident-desk
fi
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
$BIN serve >/dev/null 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
token() {
    curl -fs -X POST "$BASE/api/v1/auth/token" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"bench-password\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
ADMIN=$(token admin)
curl -fs -X POST "$BASE/api/v1/users" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d '{"username":"flood","password":"bench-password","display_name":"f","roles":["service_desk"]}' >/dev/null
reads() {
    wrk -t1 -c2 -d"$DURATION" --latency -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/users/me" |
        grep -E "Requests/sec|50%|99%" | sed 's/^ */  /'
}
echo "== GET /users/me, idle"
reads
for password in bench-password wrong-password; do
    echo "== GET /users/me while 64 clients sign in as flood with $password"
    wrk -t1 -c64 -d"$DURATION" -s bench/sign_in.lua "$BASE/api/v1/auth/token" -- flood "$password" \
        >/tmp/login-flood.$$ 2>&1 &
    FLOOD=$!
    sleep 1
    reads
    wait $FLOOD || true
    grep -E "Requests/sec|sign-ins answered" /tmp/login-flood.$$ | sed 's/^ */  /'
    rm -f /tmp/login-flood.$$
done
