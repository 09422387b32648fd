# Sourced by the benchmarks that need an empty database of their own (bench/login-flood.sh,
# bench/db-restart.sh): with DB and PORT set, builds the release server unless BIN names one,
# recreates DB (bench/server-env.sh), starts the server on it (stopped on exit) and defines `token USER` (a JWT for a
# user whose password is bench-password) and `create_user NAME ROLE` (as admin).
. bench/server-env.sh
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
create_user() {
    curl -fs -X POST "$BASE/api/v1/users" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"bench-password\",\"display_name\":\"$1\",\"roles\":[\"$2\"]}" >/dev/null
}
